"""What each Keras layer class does with the units it is fed: the one table `trace` reads.

MIX      its weights read the units (Dense, convolutions, recurrent layers): the rows that
         read them follow, and the trail ends there.
VECTOR   one value per unit (BatchNormalization, PReLU): those entries follow, the units pass on.
PASS     the units pass through unchanged, one channel each (dropout, noise, pooling over time,
         elementwise activations).
ELEMENTWISE  several inputs combined unit by unit: every input must lose the same units.
SPANS    the layer's result at one unit depends on all units: pruning would change it.
"""
from __future__ import annotations

MIX = {"Dense", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
       "SeparableConv1D"}

VECTOR = {"BatchNormalization", "PReLU"}

# Pass-through classes, and how each changes the rank of the tensor (features last).
PASS = {"Dropout": 0, "SpatialDropout1D": 0, "SpatialDropout2D": 0, "SpatialDropout3D": 0,
        "GaussianNoise": 0, "GaussianDropout": 0, "AlphaDropout": 0, "ActivityRegularization": 0,
        "ReLU": 0, "LeakyReLU": 0, "ELU": 0, "ThresholdedReLU": 0, "Identity": 0,
        "MaxPooling1D": 0, "AveragePooling1D": 0, "MaxPool1D": 0, "AvgPool1D": 0,
        "MaxPooling2D": 0, "AveragePooling2D": 0, "MaxPool2D": 0, "AvgPool2D": 0,
        "MaxPooling3D": 0, "AveragePooling3D": 0, "MaxPool3D": 0, "AvgPool3D": 0,
        "UpSampling1D": 0, "ZeroPadding1D": 0, "Cropping1D": 0, "UpSampling2D": 0, "ZeroPadding2D": 0,
        "Cropping2D": 0, "UpSampling3D": 0, "ZeroPadding3D": 0, "Cropping3D": 0,
        "GlobalMaxPooling1D": -1, "GlobalAveragePooling1D": -1, "GlobalMaxPool1D": -1,
        "GlobalAvgPool1D": -1, "GlobalMaxPooling2D": -2, "GlobalAveragePooling2D": -2,
        "GlobalMaxPool2D": -2, "GlobalAvgPool2D": -2, "GlobalMaxPooling3D": -3, "GlobalAveragePooling3D": -3,
        "RepeatVector": 1, "Activation": 0}

ELEMENTWISE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
KERAS1_MERGE = {"sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum", "concat": "Concatenate"}

# Activations that mix units (softmax normalises over all of them).
MIXING_ACTIVATIONS = {"softmax", "log_softmax"}

SPANS = {
    "LayerNormalization": "its mean and variance span all units",
    "UnitNormalization": "it divides by the norm over all units",
    "GroupNormalization": "its statistics span groups of units",
    "Softmax": "softmax normalises over all units",
    "Masking": "its mask is computed over all units",
    "Attention": "its scores are dot products over all units",
    "AdditiveAttention": "its scores are sums over all units",
    "MultiHeadAttention": "its projections and scores span all units",
    "Dot": "a dot product sums over all units",
    "Reshape": "it moves units to other axes",
    "Permute": "it moves units to other axes",
    "Lambda": "its code is never run, so what it does with the units is unknown",
    "TFOpLambda": "its code is never run, so what it does with the units is unknown",
}

# Which per-unit vector each position of a VECTOR layer's weights is, and a new unit's value.
BN_FILLS = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}


def bn_roles(config: dict, n_weights: int) -> list:
    """BatchNormalization's weights in the order Keras stores them (Keras 1 stores all four)."""
    roles = []
    if config.get("scale", True) or n_weights == 4:
        roles.append("gamma")
    if config.get("center", True) or n_weights == 4:
        roles.append("beta")
    return roles + ["moving_mean", "moving_variance"]


def channels_first(config: dict) -> bool:
    return config.get("data_format") == "channels_first" or config.get("dim_ordering") == "th"
