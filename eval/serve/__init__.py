"""Serving a model: ``predict`` reads formulas from image files, ``app`` is the web page with a
sketchpad, ``client`` sends images to an OpenAI-compatible server with the training prompt."""
