"""Dataset readers, the LaTeX tokeniser, auxiliary tasks and the dataset build.

Data flows data_prep -> train -> eval: nothing here imports train or eval.
"""
