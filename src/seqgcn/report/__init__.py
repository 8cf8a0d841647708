"""What a person looks at: tables and AUBC (`tables`), learning curves (`curves`), t-SNE maps (`tsne`).

Pure drawing and formatting of records and arrays handed in; no file names of a
run directory (`seqgcn.experiment.rundir`) and no argparse (`seqgcn.cli`).
"""
