"""What changes between Keras 1/2 configs and Keras 3's: one table, no logic.

Sources: keras 2.x `keras/legacy/interfaces.py` (Keras 1 argument names), the
constructors of keras 3.15 (which keys each class accepts; listed by
`fixtures/keras3_signatures.py`), and ../shared/reference/keras3-migration.md.
"""

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
# wherever they appear (the plan lists them). `time_major=True` is refused instead.
DROPPED_KEYS = {
    "time_major", "implementation", "consume_less", "input_dtype", "input_length", "input_dim",
    "batch_input_shape", "batch_size", "stateful_metrics", "dynamic", "zero_output_for_mask",
    "cell_type", "ragged", "sparse", "initial_weights", "weights", "name_scope",
}

# Keys every Keras 3 layer accepts (keras.layers.Layer.__init__).
BASE_KEYS = {"name", "trainable", "dtype", "autocast", "activity_regularizer"}

_RNN_LAYER = {"return_sequences", "return_state", "go_backwards", "stateful", "unroll", "dropout",
              "recurrent_dropout", "seed", "units", "activation", "use_bias", "kernel_initializer",
              "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
              "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint"}
_CONV_LSTM = (_RNN_LAYER - {"units", "unroll"}) | {
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
    "recurrent_activation", "unit_forget_bias"}
_POOL = {"pool_size", "strides", "padding", "data_format"}
_CONV = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
         "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
         "kernel_constraint", "bias_constraint"}

# Class -> keys its Keras 3 constructor accepts besides BASE_KEYS. A class missing
# here is refused by `upgrade` (named in the message): nothing unknown is guessed.
ACCEPTED = {
    "LSTM": _RNN_LAYER | {"recurrent_activation", "unit_forget_bias", "use_cudnn"},
    "GRU": _RNN_LAYER | {"recurrent_activation", "reset_after", "use_cudnn"},
    "SimpleRNN": _RNN_LAYER,
    "ConvLSTM1D": _CONV_LSTM, "ConvLSTM2D": _CONV_LSTM, "ConvLSTM3D": _CONV_LSTM,
    "LSTMCell": _RNN_LAYER - {"return_sequences", "return_state", "go_backwards", "stateful", "unroll"}
    | {"recurrent_activation", "unit_forget_bias"},
    "GRUCell": _RNN_LAYER - {"return_sequences", "return_state", "go_backwards", "stateful", "unroll"}
    | {"recurrent_activation", "reset_after"},
    "SimpleRNNCell": _RNN_LAYER - {"return_sequences", "return_state", "go_backwards", "stateful", "unroll"},
    "RNN": {"cell", "return_sequences", "return_state", "go_backwards", "stateful", "unroll"},
    "StackedRNNCells": {"cells"},
    "Bidirectional": {"layer", "merge_mode", "backward_layer"},
    "TimeDistributed": {"layer"},
    "InputLayer": {"batch_shape", "dtype", "sparse", "ragged", "name", "optional"},
    "Embedding": {"input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer",
                  "embeddings_constraint", "mask_zero"},
    "Dense": {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
              "bias_regularizer", "kernel_constraint", "bias_constraint"},
    "Conv1D": _CONV, "Conv2D": _CONV, "Conv3D": _CONV,
    "MaxPooling1D": _POOL, "MaxPooling2D": _POOL, "MaxPooling3D": _POOL,
    "AveragePooling1D": _POOL, "AveragePooling2D": _POOL, "AveragePooling3D": _POOL,
    "GlobalMaxPooling3D": {"data_format", "keepdims"}, "GlobalAveragePooling3D": {"data_format", "keepdims"},
    "GlobalMaxPooling1D": {"data_format", "keepdims"}, "GlobalAveragePooling1D": {"data_format", "keepdims"},
    "GlobalMaxPooling2D": {"data_format", "keepdims"}, "GlobalAveragePooling2D": {"data_format", "keepdims"},
    "Dropout": {"rate", "noise_shape", "seed"}, "SpatialDropout1D": {"rate", "seed"},
    "GaussianNoise": {"stddev", "seed"},
    "BatchNormalization": {"axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                           "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                           "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"},
    "LayerNormalization": {"axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                           "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"},
    "Activation": {"activation"}, "Flatten": {"data_format"}, "Reshape": {"target_shape"},
    "Masking": {"mask_value"}, "RepeatVector": {"n"}, "Permute": {"dims"},
    "Concatenate": {"axis"}, "Add": set(), "Multiply": set(), "Average": set(), "Maximum": set(),
    "Subtract": set(), "Dot": {"axes", "normalize"},
    "ZeroPadding1D": {"padding", "data_format"}, "UpSampling1D": {"size"}, "Cropping1D": {"cropping"},
    "LeakyReLU": {"negative_slope"},
}
# Keras 2 argument names that Keras 3 renamed, per class.
KERAS2_RENAMES = {"LeakyReLU": {"alpha": "negative_slope"}}

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
    "SlicingOpLambda": "TF op layers hold TensorFlow functions Keras 3 cannot rebuild",
    "Merge": "the Keras 1 Merge layer (use Concatenate/Add/... in the original code)",
}

# Serialization module of each Keras 3 class (what Keras 3 writes in config.json).
MODEL_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras"}
LAYER_MODULE = "keras.layers"
