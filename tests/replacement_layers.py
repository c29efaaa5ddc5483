"""Registered Keras 3 classes that stand in for Lambda layers in the --replace tests."""
import keras


@keras.saving.register_keras_serializable(package="lstmtool_test")
class Double(keras.layers.Layer):
    """What `Lambda(lambda x: x * 2.0)` computed."""

    def call(self, x):
        return x * 2.0
