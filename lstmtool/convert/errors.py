"""Why a model is not converted: one line naming the layer and the reason."""
from ..errors import ModelError


class Unconvertible(ModelError):
    """The model has a layer (or a setting) the ONNX graph cannot compute exactly; nothing written."""
