"""ser_keras: a Keras 3 / TensorFlow toolkit for speech emotion recognition."""

__version__ = "0.1.0"
