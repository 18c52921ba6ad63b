import pytest

from assistant.channels.api import openapi_document
from assistant.evidence import limits
from assistant.evidence.facts import Fact, OverLimit


def test_the_api_document_states_the_same_maxima():
    schemas = openapi_document()["components"]["schemas"]
    stated = {key: spec["maximum"] for name in ("Training", "Dataset")
              for key, spec in schemas[name]["properties"].items() if "maximum" in spec}
    assert stated == limits.MAXIMA
    assert schemas["Dataset"]["properties"]["class_counts"]["maxProperties"] == limits.MAXIMA["n_classes"]


@pytest.mark.parametrize("fact, field, named", [
    (Fact("n_hidden_layers", 1_001, "your message"), "symptom",
     "symptom: n_hidden_layers: 1,001 (from your message) is more than 1,000"),
    (Fact("class_counts", {str(i): 1 for i in range(30_001)}, "the dataset summary you sent"), "dataset.class_counts",
     "dataset.class_counts: 30,001 classes (from the dataset summary you sent) is more than 30,000"),
])
def test_a_count_over_its_maximum_is_refused_naming_it_and_its_input(fact, field, named):
    with pytest.raises(OverLimit) as refused:
        limits.checked([Fact("learning_rate", 1e9, "x"), fact], field.split(".")[0])
    assert refused.value.described() == named + ", the most this service works with"
    assert refused.value.field == field and refused.value.status == 422


def test_counts_at_their_maxima_and_other_facts_pass():
    facts = ([Fact(key, limit, "x") for key, limit in limits.MAXIMA.items()]
             + [Fact("loss_is_nan", True, "x"), Fact("class_counts", {"0": 10**9}, "x")])
    assert limits.checked(facts, "training") == facts
