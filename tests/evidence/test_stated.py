"""Tests for reading the setup people state in their own words (``stated_facts``).

``STATED`` maps a sentence, written the way people write on forums and in issues, to the contract
facts it must give (``None``: the key must be absent); ``NOTHING`` lists sentences that must give
no fact at all. A wrong fact misleads the diagnosis more than a missing one, so the second table
matters as much as the first.
"""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evidence import gather
from assistant.evidence.facts import EvidenceError
from assistant.evidence.symptom import stated_facts
from tests.helpers import shipped_kb

STATED = {
    # tasks
    "I trained this model for a binary classification task": {"task": "binary_classification"},
    "I want to build a binary classifier using a Keras CNN": {"task": "binary_classification"},
    "I have two classes, cats and dogs": {"task": "binary_classification", "n_classes": 2},
    "I am trying to do multi-class classification of flowers": {"task": "multiclass_classification"},
    "There are 120 classes to be classified": {"task": "multiclass_classification", "n_classes": 120},
    "it's a 10-class problem with 5000 training images":
        {"task": "multiclass_classification", "n_classes": 10, "n_samples": 5000},
    "Simple Linear Regression Nan's after a few iterations": {"task": "regression"},
    # counts
    "I only had 35 images and 10 test images": {"n_samples": 35},
    "I have 750 images in training and 350 in testing": {"n_samples": 750},
    "I have about 250,000 training samples with ratio 60/40": {"n_samples": 250000},
    "My dataset has 5000 samples and 20 features": {"n_samples": 5000, "n_features": 20},
    "a neural network with two hidden layers, each having 10 nodes": {"n_hidden_layers": 2},
    "A single hidden layer of 36 neurons": {"n_hidden_layers": 1},
    "the model is 3 stacked LSTMs followed by a Dense layer": {"n_hidden_layers": 3},
    "I trained the model for 3 epochs and the accuracy is 50%": {"epochs": 3},
    "after running for 500 epochs I can get a weight of 1.8": {"epochs": 500},
    "I only trained for a short while, only 3 epochs": {"epochs": 3},
    "model.fit(x, t, batch_size=256, nb_epoch=100, verbose=2)": {"epochs": 100, "batch_size": 256},
    "the accuracy remains unchanged at a low value through all 50 training epochs": {"epochs": 50},
    # values named with their key (answers: keys)
    "lr was 0.5 and batch size 32": {"learning_rate": 0.5, "batch_size": 32},
    "I use a lr of 1e-5 with a batch size of 1": {"learning_rate": 1e-5, "batch_size": 1},
    "loss = mse": {"loss": "mse"},
    "there is no batch norm in the model": {"batch_norm": False},
    "I am using learning rate of 0.005 and dropout of .25": {"learning_rate": 0.005, "dropout": 0.25},
    # Keras names said in prose
    "I use Adam": {"optimizer": "adam"},
    "I use SGD with momentum 0.9 and lr 0.01": {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01},
    "Bad accuracy with the Adadelta optimizer for the mnist example": {"optimizer": "adadelta"},
    "I compile with loss='categorical_crossentropy' and it is stuck": {"loss": "categorical_crossentropy"},
    "I have used Adam optimizer and categorical cross entropy loss": {"optimizer": "adam", "loss": "categorical_crossentropy"},
    "sparse categorical cross entropy as the loss": {"loss": "sparse_categorical_crossentropy"},
    "I use mean squared error loss with a sigmoid output": {"loss": "mse", "output_activation": "sigmoid"},
    "regression model: MSE stuck around 2.5e+05": {"loss": "mse", "task": "regression"},
    "the activation on output layer is sigmoid as its a binary classification":
        {"output_activation": "sigmoid", "task": "binary_classification"},
    "softmax at the end, relu activations in the hidden layers":
        {"output_activation": "softmax", "hidden_activation": "relu"},
    "the output layer with relu and tanh hidden units": {"output_activation": "relu", "hidden_activation": "tanh"},
    "hidden layers use tanh, the output layer is linear": {"hidden_activation": "tanh", "output_activation": "linear"},
    # defaults
    "the lr is the default adam one": {"optimizer": "adam", "learning_rate": 0.001},
    "SGD with the default learning rate": {"optimizer": "sgd", "learning_rate": 0.01},
    # input scaling
    "inputs are standardized with StandardScaler": {"input_scaling": "standardize"},
    "features are z-score normalized": {"input_scaling": "standardize"},
    "I normalized the pixels to [0,1]": {"input_scaling": "minmax"},
    "x_train = x_train / 255.0": {"input_scaling": "minmax"},
    "then I divided the images by 255": {"input_scaling": "minmax"},
    "Then I converted my data to range 0-1": {"input_scaling": "minmax"},
    "I feed the raw pixel values": {"input_scaling": "none"},
    "I didn't normalize the inputs": {"input_scaling": "none"},
    "the data goes in without any scaling": {"input_scaling": "none"},
    "x_train数据在加载的时候没有进行标准化": {"input_scaling": "none"},
    # negation
    "I don't use dropout": {"dropout": 0.0},
    "It's not binary, there are 5 classes": {"task": "multiclass_classification", "n_classes": 5},
    # several settings, one sentence; one of them hedged
    "I tried lr 0.1 but now I use Adam with batch size 64": {"optimizer": "adam", "batch_size": 64, "learning_rate": None},
    "with a softmax output layer for cats vs dogs": {"output_activation": "softmax"},
    # the output layer's size, the shuffling, the initial weights, the label encoding, the preprocessing
    "Accuracy stays at 50% with softmax on a single output unit": {"output_units": 1, "output_activation": "softmax"},
    "the output layer has 3 neurons": {"output_units": 3},
    "my last layer has 4 units for the 4 classes": {"output_units": 4, "n_classes": 4, "task": "multiclass_classification"},
    "I forgot to shuffle my data before splitting": {"shuffle": False},
    "model.fit(x, y, shuffle=False)": {"shuffle": False},
    "I initialized all the weights to zero": {"kernel_initializer": "zeros"},
    "using the default zero-initialization for biases is fine": {"kernel_initializer": None},
    "I initialized the biases to zero": {"kernel_initializer": None},
    "my labels are one-hot encoded": {"label_format": "one_hot"},
    "the labels are integer class ids from 0 to 9": {"label_format": "integer"},
    "My model is a logistic regression (no hidden layer)": {"n_hidden_layers": 0},
    "Deep MLP with 15 tanh layers": {"n_hidden_layers": 15, "hidden_activation": "tanh"},
    "The data is ordered: first all cats then all dogs": {"sorted_by_label": True},
    "the samples are shuffled randomly": {"sorted_by_label": None},
    "I use kernel_initializer='ones' everywhere": {"kernel_initializer": "ones"},
    "a he_normal initializer for the conv layers": {"kernel_initializer": "he_normal"},
    "I feed the images as uint8": {"input_scaling": "none"},
    "I use Dropout(0.8) after each layer": {"dropout": 0.8},
    "I used binary_crossentropy for 3 mutually exclusive classes":
        {"loss": "binary_crossentropy", "n_classes": 3, "task": "multiclass_classification"},
    "I use from_logits=True but my last layer already has softmax": {"from_logits": True, "output_activation": "softmax"},
    "The model was trained on images scaled to 0-1 but in production I feed raw images":
        {"same_preprocessing": False, "input_scaling": None},
    "class 3 images are labelled as class 5": {"n_samples": None},
    "I use categorical_crossentropy but my labels are integers 0 to 9":
        {"loss": "categorical_crossentropy", "label_format": "integer"},
    "binary_crossentropy with softmax for 5 classes":
        {"loss": "binary_crossentropy", "output_activation": "softmax", "n_classes": 5, "task": "multiclass_classification"},
    "I normalize the images during training but not when I call predict":
        {"same_preprocessing": False, "input_scaling": "standardize"},
}

#: Words that must give no fact at all.
NOTHING = [
    "Epoch 1/10 - loss: 0.6931 - acc: 0.5000 - val_loss: 0.6932 - val_acc: 0.5000",
    "12/12 [==============================] - 3s 250ms/step - loss: 2.3026 - mae: 0.91 - val_mse: 0.4",
    "after 3 epochs the loss goes to NaN",
    "After 5 epochs, training with tf.data gives the following results",
    "for the first 10 epochs the loss stays flat",
    "trained it for another 10 epochs",
    "my baseline is a logistic regression",
    "I tried lr 0.1, 0.01 and 0.001",
    "I tried learning rates between 1e-5 and 0.1",
    "batch normalization",
    "I put a batch normalization layer after the dense layer",
    "the output of the first hidden layer is not normalized",
    "I normalized the labels to [0,1]",
    "It is not a binary classification problem",
    "I am not using sigmoid at the output",
    "the model predicts only 2 classes out of 10",
    "I have 150 images in my val set",
    "I have 100 images per class",
    "I evaluate on 1000 test images",
    "The first 100 images are all cats",
    "hidden layers of 64 units",
    "I tried both 2 and 3 hidden layers",
    "other optimizers such as rmsprop",
    "I switched from SGD to Adam",
    "Adam vs SGD",
    "with SGD it works, with Adam it diverges",
    "categorical_crossentropy is for more than 2 classes and binary_crossentropy is for 2 classes",
    "a linear model",
    "The root mean squared error is 0.3",
    "I use the default learning rate",
    "with no dropout it overfits",
    "the loss was nan",
    # the setting a change that helped moved to, not the one in question
    "after normalizing the input features with StandardScaler it reached 95%",
    "after changing the kernel_initializer to he_normal the model learns",
    "lowering the learning rate to 1e-4 solved it",
]


def stated(text: str) -> dict:
    facts = stated_facts(shipped_kb(), text)
    keys = [f.key for f in facts]
    assert len(keys) == len(set(keys)), keys
    return {f.key: f.value for f in facts}


@pytest.mark.parametrize("text, expected", STATED.items(), ids=range(len(STATED)))
def test_setup_said_in_prose(text, expected):
    found = stated(text)
    for key, value in expected.items():
        if value is None:
            assert key not in found, (text, key, found)
        else:
            assert key in found, (text, key, found)
            assert found[key] == (pytest.approx(value) if isinstance(value, float) else value), (text, key, found)
    assert set(found) <= set(expected), (text, found)


@pytest.mark.parametrize("text", NOTHING, ids=range(len(NOTHING)))
def test_words_that_state_nothing(text):
    assert stated(text) == {}, text


def test_notes_quote_the_users_words():
    text = "Hi all. I only had 35 images, and I trained for 3 epochs with Adam. Why is it stuck?"
    notes = {f.key: f.note for f in stated_facts(shipped_kb(), text)}
    assert notes == {
        "n_samples": 'you wrote "I only had 35 images"',
        "epochs": 'you wrote "I trained for 3 epochs with Adam"',
        "optimizer": 'you wrote "I trained for 3 epochs with Adam"',
    }
    assert {f.source for f in stated_facts(shipped_kb(), text, source="your answer")} == {"your answer"}


def test_every_fact_is_a_contract_fact_quoting_the_text():
    kb = shipped_kb()
    for text in STATED:
        for fact in stated_facts(kb, text):
            assert fact.key in kb.vocabulary and kb.askable(fact.key), fact
            quoted = re.fullmatch(r'you wrote "(.+)"', fact.note)
            assert quoted and quoted[1] in " ".join(text.split()), fact


def test_two_values_of_one_key_give_neither():
    assert "optimizer" not in stated("I use Adam for the encoder and SGD for the decoder")
    assert "task" not in stated("binary classification of 10 classes")
    assert "n_samples" not in stated("I have 3799 samples, divided into 3419 training samples")


def test_the_message_is_read_with_the_symptom_and_an_explicit_mapping_wins():
    kb = shipped_kb()
    facts = gather(kb, symptom="My binary classifier is stuck at 50% after I trained for 3 epochs").facts
    by_key = {f.key: f for f in facts}
    assert by_key["task"].value == "binary_classification" and by_key["epochs"].value == 3
    assert by_key["epochs"].source == "your message"
    assert by_key["epochs"].note == 'you wrote "My binary classifier is stuck at 50% after I trained for 3 epochs"'
    later = gather(kb, symptom="trained for 3 epochs", training={"epochs": 30}).facts
    assert [f.value for f in later if f.key == "epochs"][-1] == 30


def test_answers_are_read_once():
    kb = shipped_kb()
    facts = gather(kb, text="I use adam with lr 3e-4, 10 classes", asked=["optimizer"]).facts
    keys = [f.key for f in facts]
    assert sorted(keys) == sorted(set(keys)), keys
    values = {f.key: f.value for f in facts}
    assert values["optimizer"] == "adam" and values["learning_rate"] == pytest.approx(3e-4)
    assert values["n_classes"] == 10 and values["task"] == "multiclass_classification"
    assert {f.source for f in facts if f.key in ("optimizer", "learning_rate", "n_classes")} == {"your answer"}


def test_the_message_must_be_text():
    with pytest.raises(EvidenceError):
        stated_facts(shipped_kb(), None)


WORDS = st.sampled_from([
    "I", "use", "have", "trained", "for", "only", "after", "3", "10", "0.01", "1e-5", "epochs", "classes", "images",
    "hidden", "layers", "adam", "sgd", "mse", "sigmoid", "relu", "softmax", "output", "binary", "classification",
    "regression", "normalized", "not", "don't", "tried", ",", ".", "lr", "batch size", "=", "/255", "default", "or",
    "and", "test", "per", "class", "the", "loss", "\n",
])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.lists(WORDS, max_size=30).map(" ".join))
def test_any_text_gives_contract_facts(text):
    kb = shipped_kb()
    for fact in stated_facts(kb, text):
        assert kb.askable(fact.key), fact
