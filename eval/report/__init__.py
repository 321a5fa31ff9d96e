"""Reports: the Markdown summary, the self-contained HTML report and paired comparison page, their
plots, and the pinned KaTeX they inline (``report_assets/`` holds their CSS and JS)."""
