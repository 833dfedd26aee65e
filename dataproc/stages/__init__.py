"""Document stages. Each module holds one stage (or one family of rules) and its config."""
