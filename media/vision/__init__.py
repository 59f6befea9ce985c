"""Face models on onnxruntime: detection (YuNet), embedding (SFace), passive
anti-spoofing, and the verifier that runs them on a call's video."""
