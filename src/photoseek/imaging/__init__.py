"""Pure operations on decoded pictures (numpy and Pillow only, no other photoseek module): the
perceptual hash the indexer stores and the duplicate finder compares, and the small re-encodings
that captioning APIs and result pages send. The bottom layer, so every layer that reads, describes
or shows pictures can use them without reaching sideways or up."""
