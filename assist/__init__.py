"""Use cases that compose the model side (``engine``) and the documents side (``rag``).

Chat session storage (``assist.sessions``), code assistance (``assist.code``) and document
answers (``assist.answers``). Nothing here imports gradio or fastapi; ``webui`` calls in.
"""
