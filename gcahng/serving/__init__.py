"""Serving a trained model without PyTorch: ONNX export, the onnxruntime embedder, the web app.

- :mod:`gcahng.serving.onnx_format`: the metadata an exported model carries (torch-free);
- :mod:`gcahng.serving.onnx_embedder`: :class:`OnnxEmbedder`, embedding with onnxruntime (torch-free);
- :mod:`gcahng.serving.export`: ``export_onnx`` (needs torch, onnx, onnxscript);
- :mod:`gcahng.serving.app`: the FastAPI application of ``gcahng serve`` (torch-free).

Nothing is imported here, so importing one part does not pull in another.
"""
