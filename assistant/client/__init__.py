"""Diagnose a Keras model from a notebook or a script, through the service's JSON API.

    from assistant.client import Client

    client = Client("http://127.0.0.1:8000")            # or Client.in_process(): no server
    diagnosis = client.diagnose("the loss is nan after 3 epochs", history=history, model=model,
                                x=x_train, y=y_train)
    diagnosis                                           # ranked causes, evidence, runnable snippets
    diagnosis.reply(facts={"learning_rate": 0.5})       # answer its questions
    model.fit(x_train, y_train, callbacks=[client.callback(stop_training=True)])  # diagnose while training

Importing this needs neither TensorFlow nor Keras: a model is read through the object passed in,
the arrays are summarised here, and only the summary leaves the machine.
"""
from .client import Client
from .display import Diagnosis
from .errors import ClientError, InputError, ServiceError, TrainingProblem, Unreachable

__all__ = ["Client", "ClientError", "Diagnosis", "InputError", "ServiceError", "TrainingProblem", "Unreachable"]
