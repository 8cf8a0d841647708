"""Label your own images: the active-learning cycle with a person as the annotator.

``seqgcn query`` trains the learner on the images labelled so far and writes the
next batch for a person (CSV, contact sheet, Label Studio tasks);
``seqgcn import-labels`` checks the answers and appends them to ``labels.csv``;
``seqgcn labelstudio push|pull`` does both through a running Label Studio.
"""

from seqgcn.labelling.images import ImageSet, find_images, load_images
from seqgcn.labelling.labels import Answer, append_labels, check_answers, read_answers, read_labels
from seqgcn.labelling.query import QueryResult, run_query

__all__ = ["Answer", "ImageSet", "QueryResult", "append_labels", "check_answers", "find_images", "load_images",
           "read_answers", "read_labels", "run_query"]
