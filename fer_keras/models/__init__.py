"""Models by name: ``build_model("dcnn", input_shape, num_classes)``.

Every model is registered with its facts (:class:`~fer_keras.models.registry.ModelSpec`:
default input shape, input mode, basic augmentation, Grad-CAM layer, noise layers, logits) by
``@register_model`` beside its builder; importing this package registers them all.
"""

from fer_keras.models.dcnn import dcnn, dcnn_deeper, dcnn_final
from fer_keras.models.ghostface import ghostface
from fer_keras.models.registry import (INPUT_MODES, REGISTRY, ModelSpec, build_model, default_input_shape, find_spec,
                                       get_spec, input_mode, logits_model, model_names, register_model, softmax_head)
from fer_keras.models.small_cnn import small_cnn
from fer_keras.models.vgg import vgg

MODEL_NAMES = model_names()

__all__ = ["INPUT_MODES", "MODEL_NAMES", "REGISTRY", "ModelSpec", "build_model", "dcnn", "dcnn_deeper", "dcnn_final",
           "default_input_shape", "find_spec", "get_spec", "ghostface", "input_mode", "logits_model", "model_names",
           "register_model", "small_cnn", "softmax_head", "vgg"]
