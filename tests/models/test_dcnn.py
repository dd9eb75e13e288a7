"""Study A's DCNN: exact parameter count, layer by layer, and its variants."""
import pytest

from fer_keras.errors import ConfigError
from fer_keras.models import MODEL_NAMES, build_model

# SPEC.md: conv / BN / ... / dense / BN / dense parameter counts of the study's printed summary.
STUDY_COUNTS = [1664, 256, 102464, 256, 73856, 512, 147584, 512, 295168, 1024, 590080, 1024,
                1179776, 512, 903]


def test_dcnn_matches_study_layer_by_layer():
    model = build_model("dcnn")
    assert model.count_params() == 2_395_591
    assert [l.count_params() for l in model.layers if l.count_params()] == STUDY_COUNTS
    assert model.input_names == ["image"] and model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)


@pytest.mark.parametrize("name, convs", [("dcnn_deeper", 10), ("dcnn_final", 15)])
def test_variants_build(name, convs):
    model = build_model(name, num_classes=3)
    assert model.output_shape == (None, 3)
    assert sum(l.__class__.__name__ == "Conv2D" for l in model.layers) == convs


def test_compact_vgg_is_a_quarter_of_the_dcnn():
    from fer_keras.profiler import count_macs

    model = build_model("vgg")
    assert model.count_params() == 1_766_439 and model.output_shape == (None, 7)
    assert count_macs(model) < 0.25 * count_macs(build_model("dcnn"))


def test_unknown_model():
    assert "dcnn" in MODEL_NAMES and "vgg" in MODEL_NAMES
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        build_model("resnet")
