"""Where the decoder blocks live, per architecture family."""

# attribute paths from the causal-LM object to its list of decoder blocks
LAYER_PATHS = (
    "model.layers",  # Llama, Qwen2, Gemma, Mistral, Phi-3
    "model.language_model.layers",  # multimodal wrappers (Gemma 3, ...)
    "transformer.h",  # GPT-2, GPT-J, Falcon
    "gpt_neox.layers",  # Pythia
)


def _base(model):
    """The underlying transformers model of a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(model) -> list:
    base = _base(model)
    for path in LAYER_PATHS:
        obj = base
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise ValueError(f"cannot find the decoder layers of {type(base).__name__}; add its path to LAYER_PATHS")


def hidden_size(model) -> int:
    config = _base(model).config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return config.hidden_size
