"""Token-labelled corpora: readers for each input format, sentence grouping, splits."""
