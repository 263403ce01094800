"""A loopback stand-in for the Hugging Face Hub, so CI can rehearse full mode offline (see `serve.py`)."""
