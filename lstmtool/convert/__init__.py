"""Whole recurrent models to ONNX, without TensorFlow or Keras: `to_onnx(src, out)`.

The model is first translated as `upgrade` translates it (Keras 1/2 configs and weights in
Keras 3's terms, kept in memory), then each Keras 3 layer becomes ONNX operators from one
table (onnx_layers; recurrent layers in onnx_recurrent)."""
