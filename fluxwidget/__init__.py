"""fluxwidget: a notebook-native playground for fal-ai/flux-lora."""
