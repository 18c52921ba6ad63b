"""Reading the Keras code and model.summary() tables people paste, never running them.

Each paste is written the way real forum posts and chat messages are: prose around the code,
fences or none, Keras 1 and Keras 3 spellings, fragments that do not parse. The expectations are
exact, facts and notes both: what is not listed must not be read, since a wrong fact misleads the
diagnosis more than a missing one.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from assistant.evidence.code import PRODUCES, SOURCE, SUMMARY_SOURCE, find_code, read_code, read_summary
from tests.helpers import shipped_kb

PYTHON_TYPES = {"boolean": (bool,), "integer": (int,), "number": (int, float), "text": (str,)}


def read(text: str) -> dict[str, tuple]:
    """The facts of a paste as key → (value, note)."""
    facts = read_code(shipped_kb().keras, text)
    keys = [f.key for f in facts]
    assert len(keys) == len(set(keys)), keys
    return {f.key: (f.value, f.note) for f in facts}


def sources(text: str) -> dict[str, str]:
    return {f.key: f.source for f in read_code(shipped_kb().keras, text)}


# --- whole models, as pasted ----------------------------------------------------------------------

KERAS1_PIMA = """Hi all, I'm new to keras and following a tutorial on the pima diabetes data. my code:
from keras.models import Sequential
from keras.layers import Dense, Activation
dataset = numpy.loadtxt("pima-indians-diabetes.csv", delimiter=",")
X = dataset[:,0:8]
Y = dataset[:,8]
model = Sequential()
model.add(Dense(output_dim=12, input_dim=8, init='uniform'))
model.add(Activation('relu'))
model.add(Dense(8, init='uniform', activation='relu'))
model.add(Dense(1, init='uniform'))
model.add(Activation('softmax'))
model.compile(loss='binary_crossentropy', optimizer=SGD(lr=0.1), metrics=['accuracy'])
model.fit(X, Y, nb_epoch=150, batch_size=10)
scores = model.evaluate(X, Y)
print "%s: %.2f%%" % (model.metrics_names[1], scores[1]*100)
the accuracy is always 0.65 no matter what i do, why??"""


def test_keras1_sequential_pasted_without_fences():
    assert read(KERAS1_PIMA) == {
        "optimizer": ("SGD", "you wrote SGD(lr=0.1)"),
        "learning_rate": (0.1, "you wrote SGD(lr=0.1)"),
        "momentum": (0.0, "you wrote SGD(lr=0.1), with no momentum"),
        "loss": ("binary_crossentropy", "you wrote loss='binary_crossentropy'"),
        "code_custom_loss": (False, "you wrote loss='binary_crossentropy'"),
        "from_logits": (False, "you wrote loss='binary_crossentropy', without from_logits=True"),
        "code_accuracy_metric": (True, "you wrote metrics=['accuracy']"),
        "epochs": (150, "you wrote nb_epoch=150"),
        "batch_size": (10, "you wrote batch_size=10"),
        "output_activation": ("softmax", "you wrote Dense(1, init='uniform') then Activation('softmax')"),
        "output_units": (1, "you wrote Dense(1, init='uniform')"),
        "hidden_activation": ("relu", "you wrote Dense(output_dim=12, input_dim=8, init='uniform') "
                                      "then Activation('relu')"),
        "n_hidden_layers": (2, "you wrote 2 hidden layers before Dense(1, init='uniform')"),
        "kernel_initializer": ("uniform", "you wrote init='uniform'"),
        "dropout": (0.0, "your model code has no Dropout layer"),
        "l2": (0.0, "your model code has no kernel_regularizer"),
        "batch_norm": (False, "your model code has no BatchNormalization layer"),
        "code_recurrent_layers": (0, "your model code has no recurrent layer"),
        "code_conv_layers": (0, "your model code has no convolutional layer"),
        "code_embedding": (False, "your model code has no Embedding layer"),
        "n_features": (8, "you wrote input_dim=8"),
    }
    assert set(sources(KERAS1_PIMA).values()) == {SOURCE} == {"your code"}


KERAS3_FUNCTIONAL = """Keras 3.3, JAX backend. Accuracy never gets above 10% on MNIST:

```python
import keras
from keras import layers

inputs = keras.Input(shape=(784,))
x = layers.Dense(128, activation="relu")(inputs)
x = layers.Dense(64)(x)
x = layers.Activation("relu")(x)
outputs = layers.Dense(10)(x)
model = keras.Model(inputs=inputs, outputs=outputs)

model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
    metrics=["accuracy"],
)
history = model.fit(x_train, y_train, batch_size=64, epochs=3, validation_split=0.2)
```

what am I missing?"""


def test_keras3_functional_model_with_a_loss_object():
    assert read(KERAS3_FUNCTIONAL) == {
        "optimizer": ("Adam", "you wrote keras.optimizers.Adam(learning_rate=1e-3)"),
        "learning_rate": (0.001, "you wrote keras.optimizers.Adam(learning_rate=1e-3)"),
        "loss": ("SparseCategoricalCrossentropy",
                 "you wrote loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False)"),
        "code_custom_loss": (False, "you wrote loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False)"),
        "from_logits": (False, "you wrote keras.losses.SparseCategoricalCrossentropy(from_logits=False)"),
        "code_accuracy_metric": (True, 'you wrote metrics=["accuracy"]'),
        "epochs": (3, "you wrote epochs=3"),
        "batch_size": (64, "you wrote batch_size=64"),
        "validation_split": (0.2, "you wrote validation_split=0.2"),
        # Logits out of a linear layer, read as probabilities by from_logits=False: the note says so.
        "output_activation": ("linear", "you wrote layers.Dense(10) with no activation"),
        "output_units": (10, "you wrote layers.Dense(10)"),
        "hidden_activation": ("relu", 'you wrote layers.Dense(128, activation="relu")'),
        "n_hidden_layers": (2, "you wrote 2 hidden layers before layers.Dense(10)"),
        "dropout": (0.0, "your model code has no Dropout layer"),
        "l2": (0.0, "your model code has no kernel_regularizer"),
        "batch_norm": (False, "your model code has no BatchNormalization layer"),
        "code_recurrent_layers": (0, "your model code has no recurrent layer"),
        "code_conv_layers": (0, "your model code has no convolutional layer"),
        "code_embedding": (False, "your model code has no Embedding layer"),
        "n_features": (784, "you wrote keras.Input(shape=(784,))"),
    }


TFKERAS_LIST = """tf 2.15. Binary classifier on tabular data (32 features) stuck at 0.69 loss.
```
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(32,)),
    tf.keras.layers.Dense(256, activation='relu', kernel_regularizer=tf.keras.regularizers.l2(0.01)),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dropout(0.3),
    tf.keras.layers.Dense(256, activation='relu', kernel_regularizer=tf.keras.regularizers.l2(0.1)),
    tf.keras.layers.Dense(1, activation='sigmoid'),
])
model.compile(optimizer=tf.keras.optimizers.RMSprop(1e-2), loss='binary_crossentropy',
              metrics=[tf.keras.metrics.AUC()])
model.fit(X_train, y_train, epochs=EPOCHS, batch_size=BATCH, shuffle=False)
```
with EPOCHS = 20 and BATCH = 512 set at the top"""


def test_tf_keras_sequential_list_with_regularizers():
    assert read(TFKERAS_LIST) == {
        "optimizer": ("RMSprop", "you wrote tf.keras.optimizers.RMSprop(1e-2)"),
        "learning_rate": (0.01, "you wrote tf.keras.optimizers.RMSprop(1e-2)"),
        "momentum": (0.0, "you wrote tf.keras.optimizers.RMSprop(1e-2), with no momentum"),
        "loss": ("binary_crossentropy", "you wrote loss='binary_crossentropy'"),
        "code_custom_loss": (False, "you wrote loss='binary_crossentropy'"),
        "from_logits": (False, "you wrote loss='binary_crossentropy', without from_logits=True"),
        "code_accuracy_metric": (False, "you wrote metrics=[tf.keras.metrics.AUC()]"),
        # epochs=EPOCHS: the prose says 20, but no code does.
        "shuffle": (False, "you wrote shuffle=False"),
        "output_activation": ("sigmoid", "you wrote tf.keras.layers.Dense(1, activation='sigmoid')"),
        "output_units": (1, "you wrote tf.keras.layers.Dense(1, activation='sigmoid')"),
        "hidden_activation": ("relu", "you wrote tf.keras.layers.Dense(256, activation='relu', …)"),
        "n_hidden_layers": (2, "you wrote 2 hidden layers before tf.keras.layers.Dense(1, activation='sigmoid')"),
        "dropout": (0.3, "you wrote tf.keras.layers.Dropout(0.3)"),
        "l2": (0.1, "you wrote kernel_regularizer=tf.keras.regularizers.l2(0.1)"),
        "batch_norm": (True, "you wrote tf.keras.layers.BatchNormalization()"),
        "code_recurrent_layers": (0, "your model code has no recurrent layer"),
        "code_conv_layers": (0, "your model code has no convolutional layer"),
        "code_embedding": (False, "your model code has no Embedding layer"),
        "n_features": (32, "you wrote tf.keras.layers.Input(shape=(32,))"),
    }


CNN = """My CNN for cats vs dogs stays at 50% val acc. Keras 2.1.3, TF backend.

```python
model = Sequential()
model.add(Conv2D(32, (3, 3), input_shape=(150, 150, 3)))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Convolution2D(64, 3, 3, activation='relu', W_regularizer=l2(0.01)))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Flatten())
model.add(Dense(64, activation='relu'))
model.add(Dropout(p=0.5))
model.add(Dense(2, activation='sigmoid'))

model.compile(loss='binary_crossentropy',
              optimizer='rmsprop',
              metrics=['accuracy'])
```

In [5]: model.fit(X_train, Y_train, batch_size=32, epochs=50, verbose=1)
"""


def test_convolutional_model_with_keras1_names_and_a_notebook_prompt():
    facts = read(CNN)
    assert facts["code_conv_layers"] == (2, "you wrote 2 convolutional layers: Conv2D, Convolution2D")
    assert facts["n_hidden_layers"] == (3, "you wrote 3 hidden layers before Dense(2, activation='sigmoid')")
    assert facts["hidden_activation"] == (
        "relu", "you wrote Conv2D(32, (3, 3), input_shape=(150, 150, 3)) then Activation('relu')")
    assert facts["output_units"] == (2, "you wrote Dense(2, activation='sigmoid')")
    assert facts["dropout"] == (0.5, "you wrote Dropout(p=0.5)")
    assert facts["l2"] == (0.01, "you wrote W_regularizer=l2(0.01)")
    assert facts["epochs"] == (50, "you wrote epochs=50")
    assert "n_features" not in facts  # an image, not a flat input


TEXT_LSTM = """```python
model = Sequential([
    Embedding(vocab_size, 128, input_length=maxlen),
    Bidirectional(LSTM(64, return_sequences=True)),
    Bidirectional(LSTM(32)),
    Dense(num_classes, activation='softmax')
])
model.compile(optimizer=tf.train.AdamOptimizer(0.001), loss='sparse_categorical_crossentropy', metrics=['acc'])
```
with `num_classes = 5`"""


def test_stacked_recurrent_layers_in_wrappers_and_a_tf1_optimizer():
    facts = read(TEXT_LSTM)
    assert facts["code_recurrent_layers"] == (2, "you wrote 2 recurrent layers: LSTM, LSTM")
    assert facts["code_embedding"] == (True, "you wrote Embedding(vocab_size, 128, input_length=maxlen)")
    assert facts["optimizer"] == ("AdamOptimizer", "you wrote tf.train.AdamOptimizer(0.001)")
    assert facts["learning_rate"] == (0.001, "you wrote tf.train.AdamOptimizer(0.001)")
    assert facts["output_units"] == (5, "you wrote Dense(num_classes, activation='softmax')")
    assert facts["hidden_activation"] == ("tanh", "you wrote LSTM(64, return_sequences=True) with no activation")
    assert facts["code_accuracy_metric"] == (True, "you wrote metrics=['acc']")
    assert "n_features" not in facts  # input_length is a sequence length, and 128 an embedding size


def test_the_model_trained_last_is_the_one_read():
    text = """First I tried this:
```
model = Sequential()
model.add(Dense(32, input_dim=4, activation='sigmoid'))
model.add(Dense(3, activation='sigmoid'))
model.compile(loss='mse', optimizer='sgd')
```
then this, same result:
```
model = Sequential()
model.add(Dense(64, input_dim=4, activation='relu'))
model.add(Dense(3, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer=Adam(lr=0.01), metrics=['accuracy'])
model.fit(X, Y, epochs=200, batch_size=5)
```"""
    facts = read(text)
    assert facts["output_activation"] == ("softmax", "you wrote Dense(3, activation='softmax')")
    assert facts["hidden_activation"] == ("relu", "you wrote Dense(64, input_dim=4, activation='relu')")
    assert facts["loss"] == ("categorical_crossentropy", "you wrote loss='categorical_crossentropy'")
    assert facts["learning_rate"] == (0.01, "you wrote Adam(lr=0.01)")


def test_a_model_built_in_a_function_and_trained_through_the_scikit_learn_wrapper():
    text = """```
def create_model():
    model = Sequential()
    model.add(Dense(12, input_dim=8, activation='relu'))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    return model

model = KerasClassifier(build_fn=create_model, epochs=150, batch_size=10, verbose=0)
results = cross_val_score(model, X, Y, cv=kfold)
```"""
    facts = read(text)
    assert facts["epochs"] == (150, "you wrote epochs=150")
    assert facts["batch_size"] == (10, "you wrote batch_size=10")
    assert facts["n_hidden_layers"] == (1, "you wrote 1 hidden layer before Dense(1, activation='sigmoid')")
    assert facts["n_features"] == (8, "you wrote input_dim=8")


def test_a_functional_keras1_model_with_merge():
    text = """```
inputs = Input(shape=(784,))
x = Dense(64, activation='relu')(inputs)
merged = merge([x, x], mode='concat')
predictions = Dense(10, activation='softmax')(merged)
model = Model(input=inputs, output=predictions)
model.compile(optimizer='rmsprop', loss='categorical_crossentropy', metrics=['accuracy'])
model.fit(data, labels, nb_epoch=10)
```"""
    facts = read(text)
    assert facts["n_hidden_layers"] == (1, "you wrote 1 hidden layer before Dense(10, activation='softmax')")
    assert facts["n_features"] == (784, "you wrote Input(shape=(784,))")
    assert facts["epochs"] == (10, "you wrote nb_epoch=10")


def test_a_hyperparameter_named_in_the_code_is_cited_with_its_value():
    text = """```
EPOCHS = 50
LR = 1e-5
model.compile(optimizer=Adam(learning_rate=LR), loss='mse')
model.fit(X, y, epochs=EPOCHS)
```"""
    facts = read(text)
    assert facts["epochs"] == (50, "you wrote epochs=EPOCHS, and EPOCHS = 50")
    assert facts["learning_rate"] == (1e-5, "you wrote Adam(learning_rate=LR)")


# --- fragments, sentences, and text with no code --------------------------------------------------

FRAGMENT = """here's the relevant part (cut some stuff):
```
model = Sequential()
model.add(LSTM(100, return_sequences=True, input_shape=(timesteps, n_features))
model.add(LSTM(100, return_sequences=True))
model.add(LSTM(50))
...
model.add(Dense(1))
model.compile(loss='mse', optimizer=Adam(lr=0.01)
model.fit(X_train, y_train, epochs=100, batch_size=32, validation_data=(X_test, y_test), ...)
```
loss goes down for 2 epochs then stays at 0.045"""


def test_a_fragment_with_syntax_errors_and_an_elision_is_read_in_part():
    # Unclosed calls and `...` are repaired; the model was cut, so nothing is said about what it lacks.
    assert read(FRAGMENT) == {
        "optimizer": ("Adam", "you wrote Adam(lr=0.01)"),
        "learning_rate": (0.01, "you wrote Adam(lr=0.01)"),
        "loss": ("mse", "you wrote loss='mse'"),
        "code_custom_loss": (False, "you wrote loss='mse'"),
        "code_accuracy_metric": (False, "you wrote model.compile(...) with no metrics"),
        "epochs": (100, "you wrote epochs=100"),
        "batch_size": (32, "you wrote batch_size=32"),
        "output_activation": ("linear", "you wrote Dense(1) with no activation"),
        "output_units": (1, "you wrote Dense(1)"),
        "hidden_activation": ("tanh", "you wrote LSTM(100, return_sequences=True, input_shape=(timesteps, "
                                      "n_features)) with no activation"),
        "code_recurrent_layers": (3, "you wrote 3 recurrent layers: LSTM, LSTM, LSTM"),
    }


def test_python2_prints_and_a_lost_indentation_do_not_hide_the_code():
    text = """print "Building model..."
for layer in base_model.layers:
layer.trainable = False
model.compile(optimizer=SGD(lr=0.0001, momentum=0.9), loss='categorical_crossentropy')
print 'done'"""
    facts = read(text)
    assert facts["code_frozen_layers"] == (True, "you wrote for layer in base_model.layers: layer.trainable = False")
    assert facts["momentum"] == (0.9, "you wrote SGD(lr=0.0001, momentum=0.9)")
    assert "code_trainable_after_compile" not in facts


INLINE = """I compile with model.compile(loss='categorical_crossentropy', optimizer=SGD(lr=0.1), \
metrics=['accuracy']) and my last layer is `model.add(Dense(1, activation='softmax'))`. I train with `epochs=3` \
and `batch_size=1`, loss is 0 from the first epoch"""


def test_code_written_inside_sentences():
    assert read(INLINE) == {
        "optimizer": ("SGD", "you wrote SGD(lr=0.1)"),
        "learning_rate": (0.1, "you wrote SGD(lr=0.1)"),
        "momentum": (0.0, "you wrote SGD(lr=0.1), with no momentum"),
        "loss": ("categorical_crossentropy", "you wrote loss='categorical_crossentropy'"),
        "code_custom_loss": (False, "you wrote loss='categorical_crossentropy'"),
        "from_logits": (False, "you wrote loss='categorical_crossentropy', without from_logits=True"),
        "code_accuracy_metric": (True, "you wrote metrics=['accuracy']"),
        "output_activation": ("softmax", "you wrote Dense(1, activation='softmax')"),
        "output_units": (1, "you wrote Dense(1, activation='softmax')"),
        "epochs": (3, "you wrote epochs=3"),
        "batch_size": (1, "you wrote batch_size=1"),
    }


def test_arguments_written_on_their_own_in_backticks():
    text = "I use `optimizer=Adam(lr=0.01)` and `loss='binary_crossentropy'`, with `epochs=3, batch_size=1`."
    assert read(text) == {
        "optimizer": ("Adam", "you wrote Adam(lr=0.01)"),
        "learning_rate": (0.01, "you wrote Adam(lr=0.01)"),
        "loss": ("binary_crossentropy", "you wrote loss='binary_crossentropy'"),
        "code_custom_loss": (False, "you wrote loss='binary_crossentropy'"),
        "epochs": (3, "you wrote epochs=3"),
        "batch_size": (1, "you wrote batch_size=1"),
    }


def test_text_with_no_code_yields_nothing():
    text = """My network doesn't learn at all. The loss is 0.6931 and acc is 0.5000 every epoch, for 50 epochs.
I'm using Keras 2.2.4 with the tensorflow backend on Ubuntu. Any ideas? Thanks in advance!

Epoch 1/50
1000/1000 [==============================] - 0s 95us/step - loss: 0.6931 - acc: 0.5000"""
    assert read_code(shipped_kb().keras, text) == []
    assert read_code(shipped_kb().keras, "") == []


@pytest.mark.parametrize("text", [
    "I use adam with the default learning rate and binary crossentropy loss. The loss is stuck at 0.69.",
    "My `loss` goes to nan with `adam` after I set lr=0.1 (batch_size=64). Is the Dense layer with softmax wrong?",
    "Tried SGD, Adam and RMSprop: loss = nan every time. validation_split is 0.2, epochs 10, batch size 32.",
    "Update: loss: 0.6931 - acc: 0.5000 - val_loss: 0.6931 - val_acc: 0.5000 (same with dropout 0.5)",
    "Should I freeze layers (trainable = False) or not? And should I shuffle X and y?",
    "3 stacked LSTMs, relu everywhere, sigmoid output (1 unit), categorical_crossentropy, 10 classes",
])
def test_prose_that_only_mentions_keras_words_yields_no_code_facts(text):
    assert read(text) == {}


def test_pasted_code_is_never_run(tmp_path: Path):
    marker = tmp_path / "ran"
    text = f"""```
import os
os.system("touch {marker}")
open("{marker}", "w").write("x")
__import__("os").system("touch {marker}")
model.compile(loss=eval("'mse'"), optimizer=exec("x = 1") or 'adam')
model.fit(X, y, epochs=int(open("{marker}").read()))
```"""
    facts = read(text)
    assert not marker.exists()
    assert "loss" not in facts and "epochs" not in facts


def test_find_code_keeps_statements_that_parse_and_marks_cut_blocks():
    code = find_code("Here it is:\n```\nmodel = Sequential()\nthis line is prose\nmodel.add(Dense(1))\n```\n")
    assert [p.src for p in code.pieces] == ["model = Sequential()", "model.add(Dense(1))"]
    assert code.partial == {code.pieces[0].block}


# --- what real causes hinge on --------------------------------------------------------------------

def test_custom_loss_with_an_unguarded_log():
    text = """I wrote my own cross entropy and the loss becomes nan after a few hundred batches:

```
def my_loss(y_true, y_pred):
    return -K.sum(y_true * K.log(y_pred))

model.compile(loss=my_loss, optimizer='adam')
```"""
    assert read(text) == {
        "optimizer": ("adam", "you wrote optimizer='adam'"),
        "loss": ("my_loss", "you wrote loss=my_loss, your own function"),
        "code_custom_loss": (True, "you wrote loss=my_loss"),
        "code_accuracy_metric": (False, "you wrote model.compile(...) with no metrics"),
        "code_unsafe_math": (True, "you wrote K.log(y_pred) in my_loss, with no clip or epsilon"),
    }


def test_a_clipped_or_smoothed_custom_loss_is_safe():
    text = """```
def dice_coef(y_true, y_pred, smooth=1):
    intersection = K.sum(y_true * y_pred, axis=[1, 2, 3])
    union = K.sum(y_true, axis=[1, 2, 3]) + K.sum(y_pred, axis=[1, 2, 3])
    return K.mean((2. * intersection + smooth) / (union + smooth), axis=0)

def dice_loss(y_true, y_pred):
    y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())
    return 1 - dice_coef(y_true, y_pred) - K.mean(K.log(y_pred))

model.compile(optimizer=Adam(lr=1e-4), loss=dice_loss, metrics=[dice_coef])
```"""
    facts = read(text)
    assert facts["code_custom_loss"] == (True, "you wrote loss=dice_loss")
    assert facts["loss"] == ("dice_loss", "you wrote loss=dice_loss, your own function")
    assert "code_unsafe_math" not in facts


def test_unsafe_math_in_a_lambda_layer_and_in_an_uncompiled_loss():
    assert read("```\nmodel.add(Dense(64, input_dim=10))\nmodel.add(Lambda(lambda x: K.exp(x)))\n```")[
        "code_unsafe_math"] == (True, "you wrote K.exp(x) in a Lambda layer, with no clip or epsilon")
    text = "def mape(y_true, y_pred):\n    return K.mean(K.abs((y_true - y_pred) / y_true))"
    assert read(text) == {"code_unsafe_math": (True, "you wrote (y_true - y_pred) / y_true in mape, "
                                                     "with no clip or epsilon")}


def test_freezing_after_compile_without_compiling_again():
    text = """Transfer learning on 5 flower classes, val accuracy stays at 20%:
```python
base_model = VGG16(weights='imagenet', include_top=False, input_shape=(224, 224, 3))
x = base_model.output
x = GlobalAveragePooling2D()(x)
x = Dense(1024, activation='relu')(x)
predictions = Dense(5, activation='softmax')(x)
model = Model(inputs=base_model.input, outputs=predictions)
model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
for layer in base_model.layers:
    layer.trainable = False
model.fit_generator(train_generator, steps_per_epoch=100, epochs=10)
```"""
    facts = read(text)
    assert facts["code_frozen_layers"] == (True, "you wrote for layer in base_model.layers: layer.trainable = False")
    assert facts["code_trainable_after_compile"] == (
        True, "you wrote for layer in base_model.layers: layer.trainable = False after model.compile(...) "
              "and did not compile again")
    assert facts["code_pretrained_base"] == (
        True, "you wrote VGG16(weights='imagenet', include_top=False, input_shape=(224, 224, 3))")
    # The VGG16 base hides its own layers: nothing is said about the model's depth or what it lacks.
    assert {"n_hidden_layers", "dropout", "batch_norm", "code_conv_layers", "n_features"}.isdisjoint(facts)
    assert facts["hidden_activation"] == ("relu", "you wrote Dense(1024, activation='relu')")


def test_the_gan_recipe_compiles_after_freezing():
    text = """```
discriminator.compile(loss='binary_crossentropy', optimizer=Adam(0.0002, 0.5))
discriminator.trainable = False
gan_input = Input(shape=(100,))
x = generator(gan_input)
gan_output = discriminator(x)
gan = Model(inputs=gan_input, outputs=gan_output)
gan.compile(loss='binary_crossentropy', optimizer=Adam(0.0002, 0.5))
```"""
    facts = read(text)
    assert facts["code_frozen_layers"] == (True, "you wrote discriminator.trainable = False")
    assert "code_trainable_after_compile" not in facts
    assert "n_features" not in facts  # the noise vector feeds a generator the code does not show
    assert facts["learning_rate"] == (0.0002, "you wrote Adam(0.0002, 0.5)")


def test_freezing_in_another_block_than_the_compile_is_not_read_as_after_it():
    text = "```\nmodel.compile(optimizer='adam', loss='mse')\n```\nLater I do:\n" \
           "```\nfor layer in model.layers[:10]:\n    layer.trainable = False\n```"
    facts = read(text)
    assert facts["code_frozen_layers"] == (True, "you wrote for layer in model.layers[:10]: layer.trainable = False")
    assert "code_trainable_after_compile" not in facts


def test_unfreezing_later_is_not_frozen_and_weights_none_is_not_pretrained():
    text = """```
base = ResNet50(weights=None, include_top=False)
base.trainable = False
base.trainable = True
```"""
    assert read(text) == {"code_pretrained_base": (False, "you wrote ResNet50(weights=None, include_top=False)")}


def test_a_pretrained_network_predicting_without_its_preprocess_input():
    code = """```
model1 = MobileNetV2(weights='imagenet')
x = cv2.imread('image_input.jpg')
x = cv2.resize(x,(224,224))
{step}y = model1.predict(x[np.newaxis,:,:,:])
```"""
    assert read(code.format(step=""))["code_skips_preprocess_input"] == (True, "you wrote MobileNetV2(weights='imagenet')")
    assert read(code.format(step="x = preprocess_input(x)\n"))["code_skips_preprocess_input"][0] is False
    trained = code.format(step="model1.fit(x_train, y_train, epochs=3)\n")  # fine-tuned: its inputs are the user's
    assert "code_skips_preprocess_input" not in read(trained)


def test_inputs_and_labels_shuffled_apart():
    text = """I shuffle the data before training so the classes are mixed:
np.random.shuffle(X)
np.random.shuffle(y)
model.fit(X, y, epochs=10, validation_split=0.1)
but val_acc is stuck at 0.33"""
    assert read(text) == {
        "epochs": (10, "you wrote epochs=10"),
        "validation_split": (0.1, "you wrote validation_split=0.1"),
        "code_shuffles_x_and_y_apart": (True, "you wrote np.random.shuffle(X) and np.random.shuffle(y), "
                                              "which shuffle them differently"),
    }
    assert read("random.shuffle(train_images)\nrandom.shuffle(train_labels)")["code_shuffles_x_and_y_apart"] == (
        True, "you wrote random.shuffle(train_images) and random.shuffle(train_labels), which shuffle them differently")


@pytest.mark.parametrize("text", [
    "np.random.seed(42)\nnp.random.shuffle(X)\nnp.random.seed(42)\nnp.random.shuffle(y)",
    "X, y = shuffle(X, y)",
    "np.random.shuffle(train_files)\nnp.random.shuffle(test_files)",
])
def test_shuffles_that_keep_inputs_and_labels_together(text):
    assert "code_shuffles_x_and_y_apart" not in read(text)


def test_validation_data_left_unscaled():
    text = """```
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train = x_train.reshape(60000, 784).astype('float32') / 255
x_test = x_test.reshape(10000, 784).astype('float32')
model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))
```
training accuracy is 98% but val_accuracy is about 10%"""
    assert read(text) == {
        "epochs": (5, "you wrote epochs=5"),
        "input_scaling": ("minmax", "you wrote x_train = x_train.reshape(60000, 784).astype('float32') / 255"),
        "code_preprocessing_differs": (True, "you wrote x_train = x_train.reshape(60000, 784).astype('float32') / 255 "
                                             "for the training data, but not for x_test"),
    }


def test_generators_that_rescale_only_the_training_images():
    text = """```
train_datagen = ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
test_datagen = ImageDataGenerator()
train_generator = train_datagen.flow_from_directory('data/train', target_size=(150, 150), batch_size=16,
                                                    class_mode='binary')
validation_generator = test_datagen.flow_from_directory('data/validation', target_size=(150, 150), batch_size=16,
                                                        class_mode='binary')
model.fit_generator(train_generator, steps_per_epoch=2000 // 16, epochs=50,
                    validation_data=validation_generator, validation_steps=800 // 16)
```"""
    assert read(text) == {
        "epochs": (50, "you wrote epochs=50"),
        "batch_size": (16, "you wrote batch_size=16"),
        "input_scaling": ("minmax", "you wrote ImageDataGenerator(rescale=1./255, …)"),
        "code_preprocessing_differs": (True, "you wrote ImageDataGenerator(rescale=1./255, …) for the training "
                                             "data, but not for validation_generator"),
    }


def test_a_scaler_applied_to_both_splits():
    text = """```
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)
model.fit(X_train, y_train, epochs=50, batch_size=32, validation_data=(X_test, y_test))
```"""
    assert read(text) == {
        "epochs": (50, "you wrote epochs=50"),
        "batch_size": (32, "you wrote batch_size=32"),
        "input_scaling": ("standardize", "you wrote scaler = StandardScaler()"),
    }


@pytest.mark.parametrize("text, scaling", [
    ("X = (X - X.mean(axis=0)) / X.std(axis=0)", "standardize"),
    ("x_train = (x_train - x_train.min()) / (x_train.max() - x_train.min())", "minmax"),
    ("X_train /= 255", "minmax"),
    ("model.add(Rescaling(1./255, input_shape=(180, 180, 3)))", "minmax"),
    ("X = MinMaxScaler().fit_transform(X)", "minmax"),
])
def test_input_scaling_as_people_write_it(text, scaling):
    assert read(text)["input_scaling"][0] == scaling


def test_scaling_that_only_touches_the_labels_says_nothing_about_the_inputs():
    assert "input_scaling" not in read("y_scaler = MinMaxScaler()\ny_train = y_scaler.fit_transform(y_train)")
    assert "input_scaling" not in read("x_train = x_train.reshape(-1, 784)\nx_train = preprocess_input(x_train)")


def test_test_data_the_code_does_not_show_being_made_is_not_called_unscaled():
    text = "```\nX_train = X_train / 255.0\nmodel.fit(X_train, y_train, epochs=5)\nmodel.evaluate(X_test, y_test)\n```"
    assert read(text) == {"epochs": (5, "you wrote epochs=5"),
                          "input_scaling": ("minmax", "you wrote X_train = X_train / 255.0")}


# --- model.summary() --------------------------------------------------------------------------------

KERAS1_SUMMARY = """here is model.summary():
____________________________________________________________________________________________________
Layer (type)                     Output Shape          Param #     Connected to
====================================================================================================
dense_1 (Dense)                  (None, 12)            108         dense_input_1[0][0]
____________________________________________________________________________________________________
dense_2 (Dense)                  (None, 8)             104         dense_1[0][0]
____________________________________________________________________________________________________
dense_3 (Dense)                  (None, 1)             9           dense_2[0][0]
====================================================================================================
Total params: 221
____________________________________________________________________________________________________
"""

KERAS2_NESTED_SUMMARY = """Model summary:

_________________________________________________________________
Layer (type)                 Output Shape              Param #
=================================================================
vgg16 (Model)                (None, 4, 4, 512)         14714688
_________________________________________________________________
flatten_1 (Flatten)          (None, 8192)              0
_________________________________________________________________
dense_1 (Dense)              (None, 256)               2097408
_________________________________________________________________
dropout_1 (Dropout)          (None, 256)               0
_________________________________________________________________
dense_2 (Dense)              (None, 2)                 514
=================================================================
Total params: 16,812,610
Trainable params: 2,097,922
Non-trainable params: 14,714,688
_________________________________________________________________
"""

TF2_SUMMARY = """Model: "sequential"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 embedding (Embedding)       (None, 100, 64)           640000

 lstm (LSTM)                 (None, 100, 64)           33024

 lstm_1 (LSTM)               (None, 64)                33024

 batch_normalization (BatchN  (None, 64)               256
 ormalization)

 dense (Dense)               (None, 1)                 65

=================================================================
Total params: 706,369
Trainable params: 706,241
Non-trainable params: 128
_________________________________________________________________
"""

KERAS3_SUMMARY = """Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ input_layer (InputLayer)        │ (None, 784)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 64)             │        50,240 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 64)             │         4,160 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_2 (Dense)                 │ (None, 10)             │           650 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 165,152 (645.13 KB)
 Trainable params: 55,050 (215.04 KB)
 Non-trainable params: 0 (0.00 B)
 Optimizer params: 110,102 (430.09 KB)
"""

KERAS3_WRAPPED_SUMMARY = """Model: "functional_1"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ input_layer         │ (None, 28, 28, 1) │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d (Conv2D)     │ (None, 26, 26,    │        320 │ input_layer[0][0] │
│                     │ 32)               │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ flatten (Flatten)   │ (None, 21632)     │          0 │ conv2d[0][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 10)        │    216,330 │ flatten[0][0]     │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 216,650 (846.29 KB)
 Trainable params: 216,650 (846.29 KB)
 Non-trainable params: 0 (0.00 B)
"""


def summary(text: str) -> dict[str, tuple]:
    facts = read_summary(shipped_kb().keras, text)
    assert {f.source for f in facts} <= {SUMMARY_SOURCE}
    return {f.key: (f.value, f.note) for f in facts}


def test_keras1_summary():
    assert summary(KERAS1_SUMMARY) == {
        "total_params": (221, "model.summary() shows Total params: 221"),
        "output_units": (1, "model.summary() shows dense_3 (Dense) with output shape (None, 1)"),
        "n_hidden_layers": (2, "model.summary() lists 2 layers with weights before dense_3 (Dense)"),
        "code_recurrent_layers": (0, "model.summary() lists 0 recurrent layers"),
        "code_conv_layers": (0, "model.summary() lists 0 convolutional layers"),
        "code_embedding": (False, "model.summary() lists no Embedding layer"),
        "batch_norm": (False, "model.summary() lists no BatchNormalization layer"),
    }


def test_keras2_summary_of_a_model_around_a_frozen_base():
    assert summary(KERAS2_NESTED_SUMMARY) == {
        "total_params": (16812610, "model.summary() shows Total params: 16,812,610"),
        "trainable_params": (2097922, "model.summary() shows Trainable params: 2,097,922"),
        "code_frozen_layers": (True, "model.summary() shows Non-trainable params: 14,714,688"),
        "output_units": (2, "model.summary() shows dense_2 (Dense) with output shape (None, 2)"),
    }


def test_tf2_summary_with_a_class_name_cut_at_the_column():
    assert summary(TF2_SUMMARY) == {
        "total_params": (706369, "model.summary() shows Total params: 706,369"),
        "trainable_params": (706241, "model.summary() shows Trainable params: 706,241"),
        "code_frozen_layers": (False, "model.summary() shows Non-trainable params: 128, all of it "
                                      "BatchNormalization's moving statistics"),
        "output_units": (1, "model.summary() shows dense (Dense) with output shape (None, 1)"),
        "n_hidden_layers": (2, "model.summary() lists 2 layers with weights before dense (Dense)"),
        "code_recurrent_layers": (2, "model.summary() lists 2 recurrent layers: lstm (LSTM), lstm_1 (LSTM)"),
        "code_conv_layers": (0, "model.summary() lists 0 convolutional layers"),
        "code_embedding": (True, "model.summary() lists embedding (Embedding)"),
        "batch_norm": (True, "model.summary() lists batch_normalization (BatchNormalization)"),
    }


def test_keras3_summary_counts_the_model_without_the_optimizer():
    assert summary(KERAS3_SUMMARY) == {
        "total_params": (55050, "model.summary() shows Total params: 165,152, of which Optimizer params: 110,102"),
        "trainable_params": (55050, "model.summary() shows Trainable params: 55,050"),
        "code_frozen_layers": (False, "model.summary() shows Non-trainable params: 0"),
        "output_units": (10, "model.summary() shows dense_2 (Dense) with output shape (None, 10)"),
        "n_hidden_layers": (2, "model.summary() lists 2 layers with weights before dense_2 (Dense)"),
        "code_recurrent_layers": (0, "model.summary() lists 0 recurrent layers"),
        "code_conv_layers": (0, "model.summary() lists 0 convolutional layers"),
        "code_embedding": (False, "model.summary() lists no Embedding layer"),
        "batch_norm": (False, "model.summary() lists no BatchNormalization layer"),
        "n_features": (784, "model.summary() shows input_layer (InputLayer) with shape (None, 784)"),
    }


def test_keras3_summary_with_cells_wrapped_over_lines():
    facts = summary(KERAS3_WRAPPED_SUMMARY)
    assert facts["code_conv_layers"] == (1, "model.summary() lists 1 convolutional layer: conv2d (Conv2D)")
    assert facts["n_hidden_layers"] == (1, "model.summary() lists 1 layer with weights before dense (Dense)")
    assert "n_features" not in facts  # an image


def test_a_summary_row_that_cannot_be_read_stops_every_claim_about_what_is_missing():
    text = KERAS1_SUMMARY.replace("dense_2 (Dense)                  (None, 8)             104",
                                  "dense_2 (Dense)    something garbled here")
    facts = summary(text)
    assert facts["total_params"] == (221, "model.summary() shows Total params: 221")
    assert {"n_hidden_layers", "code_conv_layers", "batch_norm", "code_embedding"}.isdisjoint(facts)


def test_code_and_summary_together_and_the_printed_table_wins_where_they_disagree():
    text = f"""my model:
```
model = Sequential()
model.add(Dense(64, input_dim=20, activation='relu'))
model.add(Dense(10, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer='adam')
```
and the summary (I changed the output layer since):
```
{KERAS3_SUMMARY}```"""
    facts = read(text)
    srcs = sources(text)
    assert facts["output_units"] == (10, "you wrote Dense(10, activation='softmax')")  # both say 10
    assert srcs["output_units"] == "your code"
    assert facts["n_hidden_layers"] == (2, "model.summary() lists 2 layers with weights before dense_2 (Dense)")
    assert srcs["n_hidden_layers"] == "your model.summary()"
    assert facts["n_features"][0] == 784 and srcs["n_features"] == "your model.summary()"
    assert facts["output_activation"] == ("softmax", "you wrote Dense(10, activation='softmax')")
    assert facts["total_params"] == (55050, "model.summary() shows Total params: 165,152, of which "
                                            "Optimizer params: 110,102")


# --- what the reader may emit ---------------------------------------------------------------------

EVERY_PASTE = [KERAS1_PIMA, KERAS3_FUNCTIONAL, TFKERAS_LIST, CNN, TEXT_LSTM, FRAGMENT, INLINE, KERAS1_SUMMARY,
               KERAS2_NESTED_SUMMARY, TF2_SUMMARY, KERAS3_SUMMARY, KERAS3_WRAPPED_SUMMARY]


@pytest.mark.parametrize("text", EVERY_PASTE)
def test_every_fact_is_declared_and_of_its_declared_type(text):
    declared = shipped_kb().facts
    for fact in read_code(shipped_kb().keras, text):
        spec = declared[fact.key]
        assert spec["kind"] in ("input", "code"), fact.key
        assert spec["kind"] != "code" or fact.key in PRODUCES
        assert isinstance(fact.value, PYTHON_TYPES[spec["type"]]), (fact.key, fact.value)
        assert spec["type"] == "boolean" or not isinstance(fact.value, bool), fact.key
        assert fact.note and fact.note.startswith(("you wrote ", "your model code ", "model.summary() ")), fact.note


def test_every_code_fact_is_declared_with_kind_code():
    declared = shipped_kb().facts
    assert {name for name, spec in declared.items() if spec["kind"] == "code"} == PRODUCES


def test_a_model_whose_end_was_cut_off_has_no_output_layer():
    text = "```\nmodel = Sequential()\nmodel.add(Dense(64, input_dim=10, activation='relu'))\nmodel.add(Dense(32))\n...\n```"
    assert read(text) == {"n_features": (10, "you wrote input_dim=10")}


def test_the_layer_names_are_knowledge_not_code():
    """A layer class added to keras.yaml is read like Keras's own: the reader holds no layer names."""
    from assistant.kb.model import Keras, frozen

    keras = shipped_kb().keras
    layers = dict(keras.tables["layers"])
    layers["noisy_dense"] = frozen({"class": "NoisyDense", "kind": "dense", "weighted": True,
                                    "default_activation": "linear"})
    extended = Keras(frozen({**keras.tables, "layers": frozen(layers)}), keras.model_json_classes)
    text = "model = Sequential()\nmodel.add(Dense(8, input_dim=4, activation='relu'))\nmodel.add(NoisyDense(3))"
    facts = {f.key: f.value for f in read_code(extended, text)}
    assert facts["output_units"] == 3 and facts["n_hidden_layers"] == 1
    assert "output_units" not in {f.key for f in read_code(keras, text)}


def test_keras_yaml_layer_activations_are_activations_it_knows():
    tables = shipped_kb().keras.tables
    known = set(tables["activations"])
    for name, layer in tables["layers"].items():
        for prop in ("applies", "default_activation"):
            assert layer.get(prop, "linear") in known, (name, prop)


# --- what Keras does when an argument is left out -------------------------------------------------

LINEAR = """```
x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
y = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
model = Sequential()
model.add(Dense(units=1, input_shape=(1,)))
model.compile(optimizer='rmsprop', loss='mse')
model.fit(x, y{fit})
```"""


def test_a_fit_without_epochs_trains_one_epoch_and_says_so():
    facts = read(LINEAR.format(fit=""))
    assert facts["epochs"] == (1, "you called model.fit(x, y) without epochs, so Keras trains 1 epoch")


def test_epochs_given_or_not_knowable_take_no_default():
    assert read(LINEAR.format(fit=", epochs=100"))["epochs"][0] == 100
    assert "epochs" not in read(LINEAR.format(fit=", **params"))
    assert "epochs" not in read(LINEAR.format(fit=", 32, 5"))  # batch_size and epochs by position
    looped = LINEAR.replace("model.fit(x, y{fit})", "for i in range(100):\n    model.fit(x, y)")
    assert "epochs" not in read(looped)
    assert "epochs" not in read("Changing `trainable` did not update the weights after calling `fit()`.")


def test_inputs_written_out_in_the_code_give_the_number_of_examples():
    assert read(LINEAR.format(fit=""))["n_samples"] == (10, "your inputs are written out: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    xor = "```\nX = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])\nmodel.compile(loss='mse', optimizer='adam')\nmodel.fit(X, y, epochs=10)\n```"
    assert read(xor)["n_samples"][0] == 4


def test_a_list_of_arrays_is_a_multi_input_model_not_two_examples():
    text = "```\nmodel.compile(loss='mse', optimizer='adam')\nmodel.fit([images, metadata], y, epochs=10)\n```"
    assert "n_samples" not in read(text)


def test_a_dropout_rate_of_one_or_more_drops_every_unit():
    text = "```\nmodel.add(Dense(64, activation='relu'))\nmodel.add(Dropout(256))\nmodel.add(Dense(1, activation='sigmoid'))\n```"
    assert read(text)["dropout"] == (1.0, "you wrote Dropout(256)")
