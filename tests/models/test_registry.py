"""The same checks for every registered model: its facts hold, it builds, trains a step, saves and
reloads to identical outputs, and its logits and Grad-CAM layer are what the registry says."""
import numpy as np
import pytest
import tensorflow as tf

from fer_keras.errors import ConfigError
from fer_keras.gradcam import grad_cam, last_conv_layer
from fer_keras.models import REGISTRY, build_model, get_spec, logits_model
from fer_keras.training import compile_model

#: Small inputs keep the 224x224 GhostFace quick; every other model runs at its own size.
SIZES = {"ghostface": 64}


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def built(request, tmp_path_factory):
    spec = REGISTRY[request.param]
    shape = spec.input_shape_for(SIZES.get(spec.name))
    tf.keras.utils.set_random_seed(0)
    model = spec.build(shape, 5)
    images = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    return spec, model, images, tmp_path_factory.mktemp(spec.name)


def test_facts_match_the_built_model(built):
    spec, model, images, _ = built
    assert model.name == spec.name and get_spec(model) is spec
    assert model.input_names == ["image"] and model.output_shape == (None, 5)
    assert spec.input_mode in ("unit", "standardize") and len(spec.input_shape) == 3
    layer = model.get_layer(spec.gradcam_layer)
    assert len(layer.output_shape) == 4 and last_conv_layer(model) == spec.gradcam_layer
    assert build_model(spec.name).input_shape[1:] == tuple(spec.input_shape)  # default shape


def test_probabilities_logits_and_gradcam(built):
    spec, model, images, _ = built
    probs = model(images, training=False).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    logits = logits_model(model)(images, training=False).numpy()
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-5)
    cams, _ = grad_cam(model, images[:2])
    assert cams.shape == (2, *images.shape[1:3]) and 0 <= cams.min() and cams.max() <= 1


def test_one_training_step_changes_the_weights(built):
    spec, model, images, _ = built
    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    compile_model(clone, "adam", 1e-2)
    before = [w.copy() for w in clone.get_weights()]
    clone.train_on_batch(images, np.eye(5, dtype=np.float32)[[0, 1, 2]])
    assert any(not np.array_equal(a, b) for a, b in zip(before, clone.get_weights()))


def test_saves_and_reloads_by_name_to_identical_outputs(built):
    spec, model, images, folder = built
    model.save(folder / "model.keras")
    again = tf.keras.models.load_model(folder / "model.keras", compile=False)  # no custom_objects needed
    np.testing.assert_allclose(again(images, training=False).numpy(), model(images, training=False).numpy(),
                               atol=1e-6)
    assert get_spec(again) is spec


def test_noise_layers_only_where_the_registry_says(built):
    spec, _, _, _ = built
    shape = spec.input_shape_for(SIZES.get(spec.name))
    if spec.noise_layers:
        noisy = spec.build(shape, 5, noise_layers=2)
        assert {layer.name for layer in noisy.layers} >= {"noise_1", "noise_2"}
    else:
        with pytest.raises(ConfigError, match=f"model {spec.name} has no Gaussian-noise layers"):
            spec.build(shape, 5, noise_layers=1)
    assert spec.build(shape, 5, noise_layers=0).count_params() > 0


def test_unknown_model_is_one_line():
    with pytest.raises(ConfigError, match="unknown model 'resnet'; use one of: dcnn, "):
        build_model("resnet")
