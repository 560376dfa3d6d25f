"""Network builders (one module per architecture) and their layers.

Builders return uncompiled Functional ``keras.Model`` objects taking ``{name: features}``; the
recipes in ``ser_keras.recipes`` say which builder an architecture uses and with what presets.
"""
