"""Consent: data-use opt-outs as published by sites at crawl time (robots.txt, noai, TDMRep).

``robots_index`` builds and reads the compact per-host index of the crawl's robots.txt
captures; ``signals`` finds page-level opt-outs (meta tags, HTTP headers). The filter that
applies both is ``dataproc.stages.consent.ConsentFilter``.
"""
