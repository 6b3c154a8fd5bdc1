"""Training applications on top of nn, optim and data: ``fit`` (the loop), ``runs`` (run folders
of ``chainrule train``), ``checkpoint`` (safetensors files) and ``plots`` (matplotlib, Agg).

Imported on first use (``cr.training``): it brings tqdm, safetensors and matplotlib.
"""
