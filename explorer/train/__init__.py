"""ProtoPNet training: warm-up, joint, push, last-layer optimisation (``python -m explorer train``)."""
