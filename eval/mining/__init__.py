"""Error-driven mining: split a training set into folds (``folds``), train a model on the other
folds, predict the held-out one and keep its wrong answers (``mine_errors``)."""
