"""What changes between Keras 1/2 configs and Keras 3's: one table, no logic.

Sources: keras 2.x `keras/legacy/interfaces.py` (Keras 1 argument names), the
constructors of keras 3.15 (which keys each class accepts; listed by
`scripts/keras3_schema.py`, which writes keras3_schema.py), and
../shared/reference/keras3-migration.md.
"""
from .keras3_schema import SCHEMA

# Keras 1 class names -> Keras 2/3.
CLASS_RENAMES = {
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "AtrousConvolution1D": "Conv1D",
    "AtrousConvolution2D": "Conv2D",
}

# Keras 1 argument names -> Keras 2/3 (applied to every layer that has them).
KEY_RENAMES = {
    "output_dim": "units", "init": "kernel_initializer", "inner_init": "recurrent_initializer",
    "inner_activation": "recurrent_activation", "W_regularizer": "kernel_regularizer",
    "U_regularizer": "recurrent_regularizer", "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint", "U_constraint": "recurrent_constraint",
    "b_constraint": "bias_constraint", "dropout_W": "dropout", "dropout_U": "recurrent_dropout",
    "bias": "use_bias", "nb_filter": "filters", "filter_length": "kernel_size",
    "subsample_length": "strides", "border_mode": "padding", "pool_length": "pool_size",
    "stride": "strides", "p": "rate", "atrous_rate": "dilation_rate",
    "subsample": "strides", "dim_ordering": "data_format",
}
# Per class, where one Keras 1 name means something else than KEY_RENAMES says.
CLASS_KEY_RENAMES = {
    "Embedding": {"output_dim": "output_dim", "init": "embeddings_initializer",
                  "W_regularizer": "embeddings_regularizer", "W_constraint": "embeddings_constraint",
                  "dropout": None},
    "Dense": {"output_dim": "units"},
}
# Keras 1 values with another spelling in Keras 2/3.
VALUE_RENAMES = {
    "padding": {"same": "same", "valid": "valid", "full": None},
    "data_format": {"tf": "channels_last", "th": None, "default": "channels_last"},
}
# Keras 1 `forget_bias_init='one'` means unit_forget_bias=True.
FORGET_BIAS_INIT = "forget_bias_init"

# Keys Keras 3 refuses and that change nothing a loaded model computes, dropped
# wherever they appear (the plan lists each with its reason). `time_major=True`
# is refused instead.
DROPPED_KEYS = {
    "time_major": "False: Keras 3 layers are batch-major, as this one was",
    "implementation": "a speed/memory choice of Keras 2; the result is the same",
    "consume_less": "a speed/memory choice of Keras 1; the result is the same",
    "input_dtype": "the input's dtype, carried by the InputLayer",
    "input_length": "the input's length, carried by the InputLayer",
    "input_dim": "the input's width, carried by the InputLayer",
    "batch_input_shape": "the input's shape, carried by the InputLayer",
    "batch_size": "the input's batch size, carried by the InputLayer",
    "stateful_metrics": "a training setting",
    "dynamic": "a tf.keras execution hint",
    "zero_output_for_mask": "Keras 3 outputs zeros for masked steps when returning sequences, as tf.keras did",
    "cell_type": "an annotation", "ragged": "an input property", "sparse": "an input property",
    "initial_weights": "the weights come from the file", "weights": "the weights come from the file",
    "name_scope": "a TF graph-naming hint",
    "output_shape_type": "Keras 1 Merge bookkeeping", "output_mask_type": "Keras 1 Merge bookkeeping",
    "output_mask": "Keras 1 Merge bookkeeping (null for built-in modes)",
    "arguments": "Keras 1 Merge bookkeeping", "node_indices": "Keras 1 Merge bookkeeping",
    "tensor_indices": "Keras 1 Merge bookkeeping",
    # reached only where Keras 3's class does not take the key (keras3_schema says which)
    "trainable": "this Keras 3 class takes no trainable flag (it has no weights)",
    "autocast": "this Keras 3 class takes no autocast flag",
}
# Keys a class inherited in tf.keras but never used, where Keras 3's class does not take them.
UNUSED_INHERITED = {
    cls: {"kernel_initializer", "kernel_regularizer", "kernel_constraint"}
    for cls in ("SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D")
}

# Keys every Keras 3 layer accepts (keras.layers.Layer.__init__), from Keras 3 itself.
BASE_KEYS = set(SCHEMA["layer_base_args"])


def accepted(cls: str):
    """The keys Keras 3's `cls` takes, or None for a class Keras 3 does not have."""
    entry = SCHEMA["layers"].get(cls)
    return None if entry is None else set(entry["args"])


# Keras 2 classes Keras 3 dropped, with their exact Keras 3 form: (class, key renames, fixed keys).
# ThresholdedReLU: x if x > theta else 0 == Keras 3 ReLU(threshold=theta), which computes
# `where(x > threshold, x, 0)` (keras/src/activations/activations.py).
REPLACED_CLASSES = {
    "ThresholdedReLU": ("ReLU", {"theta": "threshold"}, {"negative_slope": 0.0, "max_value": None}),
}
# Keras 1's Merge layer by mode: the Keras 3 class.
MERGE_MODES = {"concat": "Concatenate", "sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum"}
# Classes Keras 3 no longer has and that have no exact replacement.
REMOVED_CLASSES = {
    "LocallyConnected1D": "Keras 3 has no LocallyConnected layers (removed in Keras 2.12)",
    "LocallyConnected2D": "Keras 3 has no LocallyConnected layers (removed in Keras 2.12)",
    "Highway": "Keras 1's Highway layer has no Keras 3 equivalent",
    "MaxoutDense": "Keras 1's MaxoutDense layer has no Keras 3 equivalent",
    "TimeDistributedDense": "Keras 1's TimeDistributedDense (write TimeDistributed(Dense) in the original code)",
}

# ---- nested objects (upgrade_objects.py) ----------------------------------------------
# Activation names of older Kerases that Keras 3 spells otherwise.
ACTIVATION_RENAMES = {"swish": "silu"}
# Old class name -> (Keras 3 class, {old key: new key}), per kind; unlisted names are
# taken as Keras 3 class names and checked against keras3_schema.
OBJECT_RENAMES = {
    "initializer": {"Zero": ("Zeros", {}), "One": ("Ones", {})},
    "regularizer": {"L1L2Regularizer": ("L1L2", {}), "ActivityRegularizer": ("L1L2", {}),
                    "WeightRegularizer": ("L1L2", {})},
    "constraint": {"MaxNorm": ("MaxNorm", {"m": "max_value"}), "NonNeg": ("NonNeg", {}),
                   "UnitNorm": ("UnitNorm", {}), "MinMaxNorm": ("MinMaxNorm", {})},
}
# Keys of old nested objects dropped, with why.
OBJECT_DROPPED_KEYS = {"dtype": "Keras 3 initializers take the dtype from their layer"}
# Values renamed inside nested objects: (class, key) -> {old: new}. Keras 2's
# VarianceScaling 'normal' was a truncated normal (keras 2.2.3 initializers.py).
OBJECT_VALUE_RENAMES = {("VarianceScaling", "distribution"): {"normal": "truncated_normal"}}
# Keras 1 initializer names -> Keras 3 (class, config); Keras 1's 'uniform' and
# 'normal' had scale 0.05 (keras 1.2.2 initializations.py).
INITIALIZER_NAMES = {
    "zero": ("Zeros", {}), "one": ("Ones", {}),
    "uniform": ("RandomUniform", {"minval": -0.05, "maxval": 0.05}),
    "normal": ("RandomNormal", {"mean": 0.0, "stddev": 0.05}),
}
# Initializer names an old Keras wrote but could not read back itself: the key is dropped (Keras 3's
# default applies) and the plan says why. Initializers never change a loaded model's numbers.
UNREADABLE_INITIALIZERS = {
    "recurrent_identity": "Keras 2.3's LSTM/GRU replace Identity by a local function and save its name",
}
CONSTRAINT_NAMES = {"maxnorm": "max_norm", "nonneg": "non_neg", "unitnorm": "unit_norm", "max_norm": "max_norm",
                    "non_neg": "non_neg", "unit_norm": "unit_norm", "min_max_norm": "min_max_norm"}

# Keras 2 argument names that Keras 3 renamed, per class.
KERAS2_RENAMES = {"LeakyReLU": {"alpha": "negative_slope"}, "PReLU": {"init": "alpha_initializer"}}

# Keys tf.keras wrote as one-element lists where Keras 3 takes the element.
UNWRAP_SINGLE = {"BatchNormalization": {"axis"}}

# How many weights each class stores, in order (Keras 2 and 3 agree); checked on upgrade.
WEIGHT_NAMES = {
    "Dense": ("kernel", "bias"), "Conv1D": ("kernel", "bias"), "Conv2D": ("kernel", "bias"),
    "Conv3D": ("kernel", "bias"),
    "Embedding": ("embeddings",),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
}

# Cells whose class changes on upgrade (the weights are converted by their layout).
CELL_RENAMES = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}

# Activations whose formula differs between Keras 1/2 and Keras 3, and the factor
# that makes Keras 3's formula compute Keras 2's: 0.2x + 0.5 = (1.2x)/6 + 0.5.
HARD_SIGMOID_SCALE = 1.2

# Classes that are never carried over, and why.
REFUSED = {
    "Lambda": "Lambda layers hold Python bytecode, which lstmtool never runs or copies",
    "TFOpLambda": "TF op layers hold TensorFlow functions Keras 3 cannot rebuild",
    "TensorFlowOpLayer": "TF op layers hold TensorFlow functions Keras 3 cannot rebuild",
    "SlicingOpLambda": "TF op layers hold TensorFlow functions Keras 3 cannot rebuild",
}

# Serialization module of each Keras 3 class (what Keras 3 writes in config.json).
MODEL_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras"}
LAYER_MODULE = "keras.layers"
