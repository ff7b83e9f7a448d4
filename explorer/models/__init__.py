"""Prototype models: the protocol, ProtoPNet, backbones and checkpoint I/O."""
