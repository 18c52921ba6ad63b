"""Tests for reading symptoms from the user's own words, and contract facts from their answers.

Each table maps what a user typed to the facts it must give; ``None`` means the key must be
absent. The public cases' symptoms are all listed, so a new case fails here until its
expectations are written down.
"""
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.evidence.facts import EvidenceError
from assistant.evidence.symptom import answer_facts, symptom_facts, tried_facts
from assistant.kb.model import Remedies
from tests.helpers import CASES, ROOT, shipped_kb

SYMPTOM_TYPES = {key: entry["type"] for key, entry in
                 yaml.safe_load((ROOT / "knowledge" / "facts.yaml").read_text())["facts"].items()
                 if entry["kind"] == "symptom"}
PYTHON_TYPES = {"boolean": bool, "number": float, "integer": int}

#: Every distinct ``request.symptom`` of shared/cases.
CASE_SYMPTOMS = {
    "My regression loss hardly moves, it stays at about 3.045e+04":
        {"symptom_loss_flat": True, "symptom_regression": True, "symptom_loss_value": 30450.0,
         "symptom_huge_loss": None},
    "Keras question: loss is going down but extremely slowly: 1.624 to 1.455 in 12 epochs (TF 2 / Keras 3)":
        {"symptom_slow": True, "symptom_first_loss": 1.624, "symptom_loss_value": 1.455, "symptom_loss_flat": None},
    "Hi, the loss is huge, 6.38e+03 at its worst and still 1.51 at the end":
        {"symptom_huge_loss": True, "symptom_max_loss": 6380.0, "symptom_loss_value": 1.51},
    "Hey all: the loss goes down nicely but accuracy stays at 0 (TF 2 / Keras 3)":
        {"symptom_metric_stuck": True, "symptom_accuracy": 0.0, "symptom_loss_flat": None},
    "Val_accuracy stays near zero even though training accuracy goes up":
        {"symptom_val_near_zero": True, "symptom_loss_flat": None, "symptom_gap": None},
    "The loss barely changes between epochs (1.103 at the start, 1.099 after 10 epochs). What am I doing wrong?":
        {"symptom_loss_flat": True, "symptom_first_loss": 1.103, "symptom_loss_value": 1.099},
    "Hi, loss plateaus around 0.25 and accuracy won't go above 88%":
        {"symptom_plateau": True, "symptom_loss_value": 0.25, "symptom_accuracy": 0.88, "symptom_loss_flat": None},
    "Hi, training loss looks great but val_loss gets worse every epoch after epoch 2":
        {"symptom_val_worse": True, "symptom_metric_stuck": None, "symptom_loss_value": None},
    "Hi, nothing seems to be learning, the loss curve is a flat line":
        {"symptom_loss_flat": True},
    "The metrics are identical from epoch 1 to epoch 8, nothing moves. Any idea why?":
        {"symptom_constant_metrics": True, "symptom_loss_flat": True, "symptom_loss_value": None,
         "symptom_accuracy": None},
    "Hi, training accuracy gets to 100% but validation only reaches 30%":
        {"symptom_gap": True, "symptom_train_accuracy": 1.0, "symptom_val_accuracy": 0.30},
    "My loss doesn't go down, it stays around 1.61 the whole time":
        {"symptom_loss_flat": True, "symptom_loss_value": 1.61},
    "Accuracy is 95% but recall stays at 0.00. How do I fix this?":
        {"symptom_recall_zero": True, "symptom_accuracy": 0.95, "symptom_loss_flat": None},
    "Help please - the first epoch loss is 1.376e+08, which seems crazy, and it never gets to a normal value":
        {"symptom_huge_loss": True, "symptom_first_loss": 1.376e8},
    "Help please - the loss shows 0.0000 every epoch but accuracy is only 52%. How do I fix this?":
        {"symptom_zero_loss": True, "symptom_accuracy": 0.52, "symptom_loss_value": 0.0},
    "Help please - the loss goes below zero (-323 at the end), which I thought was impossible (TF 2 / Keras 3)":
        {"symptom_negative_loss": True, "symptom_loss_value": -323.0, "symptom_zero_loss": None},
    "Help please - the loss is huge, 5.04e+05 at its worst and still 5.21e+03 at the end":
        {"symptom_huge_loss": True, "symptom_max_loss": 5.04e5, "symptom_loss_value": 5210.0},
    "Keras question: loss plateaus around 1.35 and accuracy won't go above 34%":
        {"symptom_plateau": True, "symptom_loss_value": 1.35, "symptom_accuracy": 0.34, "symptom_loss_flat": None},
    "Training finished but the results are poor, the final loss is 0.997. What am I doing wrong?":
        {"symptom_poor_results": True, "symptom_loss_value": 0.997},
    "Nothing seems to be learning, the loss curve is a flat line. What am I doing wrong?":
        {"symptom_loss_flat": True},
    "Loss values are enormous and accuracy is only 34%":
        {"symptom_huge_loss": True, "symptom_accuracy": 0.34},
    "Training accuracy gets to 100% but validation only reaches 67%. How do I fix this?":
        {"symptom_gap": True, "symptom_train_accuracy": 1.0, "symptom_val_accuracy": 0.67},
    "The loss jumps up and down a lot between epochs instead of going down steadily":
        {"symptom_jumpy": True, "symptom_loss_flat": None},
    "My loss doesn't go down, it stays around 1.1 the whole time (TF 2 / Keras 3)":
        {"symptom_loss_flat": True, "symptom_loss_value": 1.1},
    "Hi, the first epoch loss is 1.52e+06, which seems crazy, and it never gets to a normal value. "
    "How do I fix this?":
        {"symptom_huge_loss": True, "symptom_first_loss": 1.52e6},
    "Keras question: training is painfully slow to improve, after 15 epochs accuracy is only 41%. "
    "What am I doing wrong?":
        {"symptom_slow": True, "symptom_accuracy": 0.41, "symptom_loss_flat": None},
}

#: The way people put it on forums and in chat.
FORUM = {
    "I am training on the PASCAL_VOC 2012 dataset with the segmentation class pngs.": {"symptom_label_images": True},
    "albert classification sometimes fails catastrophically with our compilation defaults": {"symptom_unstable_runs": None},
    "the script will sometime give good results, and sometimes hover at 50% accuracy": {"symptom_unstable_runs": True},
    "Albert fine tuning does not always converge": {"symptom_unstable_runs": True},
    "some runs converge and others get stuck at 0.69": {"symptom_unstable_runs": True},
    "Have tried changed the learning rate from 1 to 1e-8.": {"symptom_nan_despite_fix": True},
    "when i try to evaluate images it seems like rolling a dice": {"symptom_new_inputs_wrong": True},
    "Is it necessary to preprocess the images the same way, as it is done before training?":
        {"symptom_new_inputs_wrong": True},
    "when I try to predict, it takes about 2 seconds": {"symptom_new_inputs_wrong": None},
    "fine-tuning distilbert on my reviews, accuracy stays at 50%": {"symptom_fine_tuning": True},
    "I use transfer learning from ResNet50 with weights='imagenet'": {"symptom_fine_tuning": True},
    "I train a small CNN from scratch": {"symptom_fine_tuning": None},
    # English terms among words of a script without spaces: a word boundary is one between Latin letters.
    "训练时loss值为nan": {"symptom_loss_nan": True},
    "第一个epoch时loss就出现nan": {"symptom_loss_nan": True},
    "准确率accuracy一直是0.5不变": {"symptom_loss_nan": None},
    "My data use the labelme to annotate and the predicted images are all blue": {"symptom_label_images": True},
    "the label images are 8-bit PNGs with the VOC colour map": {"symptom_label_images": True},
    "I converted my masks to grayscale": {"symptom_label_images": True},
    "I pass an attention mask to the BERT layer": {"symptom_label_images": None},
    "why with lower value of learning rate the accuracy is increasing rapidly?": {"symptom_lower_lr_helps": True},
    "Reducing the learning rate to 1e-5 fixed it": {"symptom_lower_lr_helps": True},
    "I tried lowering the learning rate to improve it, but no luck": {"symptom_lower_lr_helps": None},
    "lowering the learning rate didn't help": {"symptom_lower_lr_helps": None},
    "My Agent was always going straight.": {"symptom_same_class": True},
    "I am not getting any mask. all file is blank": {"symptom_same_class": True},
    "the predicted images are all black": {"symptom_same_class": True},
    "Dropout makes performance worse.": {"symptom_regularization_hurts": True},
    "turning off dropout makes all my results better": {"symptom_regularization_hurts": True},
    "I had `Dropout(256)` instead of `Dense(256)`": {"symptom_regularization_hurts": True},
    "then only loss decreased val_loss frozen between 24 and 25":
        {"symptom_gap": True, "symptom_constant_metrics": None, "symptom_frozen_weights": None, "symptom_loss_flat": None},
    "val loss is stuck while training loss goes down": {"symptom_gap": True, "symptom_loss_flat": None},
    "Sudden spike in validation loss": {"symptom_val_worse": True},
    "loss for training data goes down but for validation data it first falls and then goes on increasing":
        {"symptom_val_worse": True},
    "Accuracy for training data finally settles down at 0.94": {"symptom_train_accuracy": 0.94},
    "I froze the first 10 layers of VGG16": {"symptom_frozen_weights": True},
    "it should learn y = 2x + 1 but the predictions are off": {"symptom_linear_task": True},
    "simple linear regression model is not able to predict correctly": {"symptom_linear_task": True, "symptom_regression": True},
    "The reason why constant loss": {"symptom_loss_flat": True},
    "Why the test set loss is rising": {"symptom_val_worse": True},
    "After training the model (for a short time) I see an accuracy of 80%": {"symptom_short_training": True},
    "the model is not trained long enough": {"symptom_short_training": True, "symptom_loss_flat": None},
    "All the times, I get zero test accuracy, although the training accuracy is improving":
        {"symptom_val_near_zero": True},
    "I think it is overfitting": {"symptom_val_worse": True},
    "the weights don't update at all after the first epoch": {"symptom_frozen_weights": True},
    "the loss explodes to very high numbers": {"symptom_explodes": True},
    "fraud detection with 0.1% positive transactions": {"symptom_imbalanced_data": True},
    "My CNN accuracy is stuck at 10% on CIFAR-10": {"symptom_loss_flat": True, "symptom_accuracy": 0.10},
    "val_loss increases after 5 epochs while loss keeps decreasing":
        {"symptom_val_worse": True, "symptom_loss_flat": None},
    "getting nan loss after a few iterations": {"symptom_loss_nan": True, "symptom_nan_epoch": None},
    "model always outputs the same value": {"symptom_same_class": True},
    "Loss becomes NaN after epoch 3": {"symptom_loss_nan": True, "symptom_nan_epoch": 3},
    "loss: nan after the 2nd epoch": {"symptom_loss_nan": True, "symptom_nan_epoch": 2},
    "After 3 epochs the loss goes to NaN": {"symptom_loss_nan": True, "symptom_nan_epoch": 3},
    "my loss is inf from the very first batch": {"symptom_loss_nan": True},
    "Why is my model not learning? accuracy stays at 50% for binary classification":
        {"symptom_loss_flat": True, "symptom_accuracy": 0.5},
    "Keras model predicts the same class for every input": {"symptom_same_class": True},
    "Model predicts only zeros for every sample, recall of 0":
        {"symptom_same_class": True, "symptom_recall_zero": True},
    "training loss decreases but validation loss increases - overfitting?":
        {"symptom_val_worse": True, "symptom_metric_stuck": None},
    "Loss doesn't decrease, stays at 0.6931": {"symptom_loss_flat": True, "symptom_loss_value": 0.6931},
    "LSTM loss plateaus at 0.45 and stops improving after epoch 20":
        {"symptom_plateau": True, "symptom_loss_value": 0.45, "symptom_loss_flat": None},
    "Validation accuracy is very low compared to training accuracy (98% vs 40%)":
        {"symptom_gap": True, "symptom_train_accuracy": None, "symptom_val_accuracy": None},
    "Training accuracy 99%, validation accuracy 55%, clearly overfitting":
        {"symptom_train_accuracy": 0.99, "symptom_val_accuracy": 0.55, "symptom_gap": True,
         "symptom_val_worse": True},
    "My loss is oscillating wildly between 0.3 and 5.0": {"symptom_jumpy": True, "symptom_loss_value": None},
    "The training loss keeps fluctuating and is unstable": {"symptom_jumpy": True},
    "loss is negative when using binary_crossentropy": {"symptom_negative_loss": True},
    "The accuracy is always 0 while the loss goes down for my regression model":
        {"symptom_metric_stuck": True, "symptom_regression": True, "symptom_accuracy": 0.0,
         "symptom_loss_flat": None},
    "Precision and recall are 0 for the minority class, the model never predicts the minority class":
        {"symptom_recall_zero": True},
    "Training is extremely slow to converge, loss decreases very slowly": {"symptom_slow": True},
    "Loss went from 0.69 to 0.68 in 50 epochs, super slow":
        {"symptom_slow": True, "symptom_first_loss": 0.69, "symptom_loss_value": 0.68},
    "loss starts at 2.30 and ends at 2.29": {"symptom_first_loss": 2.30, "symptom_loss_value": 2.29},
    "the loss stays exactly the same every epoch": {"symptom_constant_metrics": True},
    "Accuracy is only 52% after 100 epochs, results are bad":
        {"symptom_poor_results": True, "symptom_accuracy": 0.52},
    "loss is 2.3026 and accuracy 0.1 every epoch": {"symptom_loss_value": 2.3026, "symptom_accuracy": 0.1},
    "Loss explodes to 1e+12 then nan": {"symptom_loss_nan": True, "symptom_huge_loss": True},
    "val_acc: 0.0000 - acc: 0.9812":
        {"symptom_val_near_zero": True, "symptom_val_accuracy": 0.0, "symptom_accuracy": 0.9812},
    "Huge gap between train and validation accuracy": {"symptom_gap": True, "symptom_huge_loss": None},
    "My loss values are in the millions": {"symptom_huge_loss": True},
    "regression model: mse stuck around 2.5e+05":
        {"symptom_regression": True, "symptom_loss_flat": True, "symptom_loss_value": 2.5e5,
         "symptom_huge_loss": True},
    "The model is overfitting badly, val loss starts going up after epoch 10": {"symptom_val_worse": True},
    "accuracy won't go above 60% no matter what I do": {"symptom_plateau": True, "symptom_accuracy": 0.6},
    "loss zero from epoch 1 and accuracy 0.5": {"symptom_zero_loss": True, "symptom_accuracy": 0.5},
    "loss jumps around a lot and has spikes": {"symptom_jumpy": True},
    "I'm predicting house prices and the mse is in the billions": {"symptom_large_targets": True},
    "I normalized the features but not the target": {"symptom_large_targets": True},
    "my y values go up to 750,000": {"symptom_large_targets": True},
    "My custom loss with K.log gives nan after a few batches":
        {"symptom_custom_loss": True, "symptom_unsafe_math": True, "symptom_loss_nan": True},
    "Training in float16 gives inf loss": {"symptom_unsafe_math": True, "symptom_loss_nan": True},
    "I lowered the learning rate but it didn't help, still nan": {"symptom_nan_despite_fix": True},
    "NaN loss despite clipnorm": {"symptom_nan_despite_fix": True},
    "Validation accuracy is 95% but it fails on my own images": {"symptom_new_inputs_wrong": True},
    "predicting on a single image gives the wrong class": {"symptom_new_inputs_wrong": True},
    "val_acc and model.evaluate accuracy don't match": {"symptom_new_inputs_wrong": True},
    "Works in Keras but the predictions are wrong after converting to TFLite": {"symptom_converted_model": True},
    "ValueError: Input contains NaN, infinity or a value too large for dtype('float32')": {"symptom_data_nan": True},
    "there are NaN values in my dataset": {"symptom_data_nan": True},
    "the data has some missing values": {"symptom_data_nan": True},
    "Model learns with keras but doesn't learn with tf.keras": {"symptom_version_difference": True},
    "Why is my autoencoder with tensorflow 2.0 performing very bad compared to the same code in keras?":
        {"symptom_version_difference": True},
    "accuracy went from 97% to 70% after upgrading from 0.18.5 to 0.21.3": {"symptom_version_difference": True},
    "Neural Network only outputting 1 regardless of the input": {"symptom_outputs_one": True},
    'the outputs are all the value "1.0"': {"symptom_outputs_one": True},
    "val_accuracy stays about 0.11": {"symptom_val_near_zero": None, "symptom_val_accuracy": 0.11},
    "I am also getting high traning accuracy vs low validation accuracy.": {"symptom_gap": True},
    "training accuracy is high but test accuracy is low": {"symptom_gap": True},
    "For some reason, I can't get a loss below 5.545 regardless of options": {"symptom_plateau": True,
                                                                             "symptom_loss_value": 5.545},
    "the loss does not go under 0.69": {"symptom_plateau": True, "symptom_loss_value": 0.69},
    "the loss is below 0.1 now": {"symptom_loss_value": None},
    "seems the network converges to all zeros prediction": {"symptom_same_class": True},
    "the model predicts all zeros": {"symptom_same_class": True},
    "I followed your instructions and made my own dataset. However, all my loss is Nan":
        {"symptom_own_data": True, "symptom_loss_nan": True},
    "works on MNIST, but I trained it on a custom dataset": {"symptom_own_data": True},
    "model accuracy drops after reaching 99 percent accuracy and loss 0.01": {"symptom_collapse": True},
    "It seems the accuracy calculation method got changed for multi-label classification?":
        {"symptom_metric_doubt": True},
    "how is the accuracy calculated in keras?": {"symptom_metric_doubt": True},
    # Chinese, as on the GitHub issues of Chinese repositories
    "训练结果没有变化，loss和accuracy都没有变化，是不是x_train数据没有进行标准化的问题":
        {"symptom_loss_flat": True, "symptom_mentions_accuracy": True},
    "训练集准确率快到1了，难到不是过拟合了吗": {"symptom_val_worse": True, "symptom_mentions_accuracy": True},
    "改成自己的数据集之后train的acc总是在几乎1的数值，测试结果为纯色。标签为8位png的索引图。":
        {"symptom_own_data": True, "symptom_same_class": True, "symptom_label_images": True, "symptom_accuracy": 1.0},
    "出现nan，调整学习率也没效果": {"symptom_loss_nan": True, "symptom_nan_despite_fix": True},
    "VAE costs are nan": {"symptom_loss_nan": True, "symptom_unsafe_math": True},
    "my regression model predicts the mean": {"symptom_same_class": True},
    "my validation loss is much higher than training loss": {"symptom_gap": True},
    "the training goes fine, but the validation set either doesn't improve or only improves slightly":
        {"symptom_gap": True},
    "accuracy fixed at 0.5, while training loss stably drops": {"symptom_metric_stuck": True},
    "eval_accuracy = 0.3 eval_loss = 1.2 global_step = 7800": {"symptom_val_accuracy": 0.3},
    "All my predictions are around 0.5, whatever the image": {"symptom_same_class": True},
    "The validation loss is lower than the training loss": {"symptom_val_better": True, "symptom_gap": None},
    "my training accuracy is lower than the validation accuracy": {"symptom_val_better": True, "symptom_gap": None},
    "the validation accuracy is lower than the training accuracy": {"symptom_gap": True, "symptom_val_better": None},
    # a number inside a call is an argument, not a measurement
    "train accuracy also 0.5, I use Dense(1, activation='softmax')": {"symptom_train_accuracy": 0.5},
    "my loss function divides by the sum of the predictions": {"symptom_unsafe_math": True},
    "The labels in my dataset are noisy, annotators disagreed a lot":
        {"symptom_noisy_labels": True, "symptom_jumpy": None},
    "about 10% of the images are mislabeled": {"symptom_noisy_labels": True},
    "After a few epochs all my ReLU units are dead and output 0": {"symptom_dead_units": True},
    "I shuffled X but not y, and accuracy is at chance": {"symptom_labels_misaligned": True},
    # loosely written, as forum posts are
    "loss keeps constant value": {"symptom_loss_flat": True},
    "loss stucks at 0.69": {"symptom_loss_flat": True},
    "prediction is always class 0": {"symptom_same_class": True},
    "My accuracy drops suddenly to 0.5 after reaching 0.9": {"symptom_collapse": True},
    "the labels don't match the images after my renaming script": {"symptom_labels_misaligned": True},
    "is this the dying relu problem?": {"symptom_dead_units": True},
    "99% of my samples are negatives": {"symptom_imbalanced_data": True},
    "My regression targets are between 0 and 1e6": {"symptom_large_targets": True},
    "The network works on the training set but on images from my webcam it's random": {"symptom_new_inputs_wrong": True},
    "When I unfreeze the base model the accuracy drops to 10%": {"symptom_fine_tuning": True},
    "Each time I run the training I get very different results": {"symptom_unstable_runs": True},
    "It works on the training data but fails on new images I take with my phone": {"symptom_new_inputs_wrong": True},
    "the training accuracy converges to 1 after 30 epochs, but the testing accuracy converges to 0.6":
        {"symptom_train_accuracy": 1.0, "symptom_val_accuracy": 0.6, "symptom_accuracy": None, "symptom_gap": True},
    "the loss goes down to 0.35 but accuracy stays the same": {"symptom_metric_stuck": True},
    "training loss keeps going up": {"symptom_explodes": True},
    "Why the test set loss is rising": {"symptom_val_worse": True, "symptom_explodes": None},
    "the classes are 90% negative and 10% positive": {"symptom_imbalanced_data": True, "symptom_accuracy": None},
    "accuracy jumps between 0.3 and 0.7": {"symptom_jumpy": True},
    "I get 100% accuracy on training but 50% on test":
        {"symptom_train_accuracy": 1.0, "symptom_val_accuracy": 0.5, "symptom_gap": True},
    "the loss is 0.5 on training": {"symptom_loss_value": 0.5, "symptom_train_accuracy": None},
    "the loss does not change at all": {"symptom_loss_flat": True},
    "It reached 0.99. But after a few more epoches, the model converges to loss 0.6 and accuracy 0.5":
        {"symptom_collapse": True},
    "Tabular regression model great on train, terrible on test.": {"symptom_gap": True},
    "I generated the yolov5s_saved_model with export.py and loaded it with keras.models.load_model":
        {"symptom_converted_model": True},
    "Model has 96% val accuracy but always predicts cat in my Flask app.": {"symptom_new_inputs_wrong": True},
    "Text classifier good in notebook, nonsense in production.": {"symptom_new_inputs_wrong": True},
    # What the user changed that made it work names the cause; the numbers said of the changed run are not theirs.
    "My model was stuck at 50% accuracy; after normalizing the input features with StandardScaler it reached 95%.":
        {"symptom_scaling_helps": True, "symptom_accuracy": 0.5},
    "Adding clipnorm=1.0 to the optimizer fixed it.": {"symptom_clipping_helps": True},
    "when optimizer is adagrad the accuracy is stuck, other optimizers work normally":
        {"symptom_optimizer_change_helps": True},
    "If I remove the softmax activation from the output layer the model trains correctly.":
        {"symptom_output_activation_change_helps": True},
    "The loss was stuck until I reduced the l2 regularization from 0.1 to 0.0001.":
        {"symptom_regularization_hurts": True, "symptom_loss_value": None, "symptom_first_loss": None},
    "The accuracy was only 60% after 5 epochs but when I train for more epochs it gets to 95%.":
        {"symptom_longer_training_helps": True, "symptom_accuracy": 0.6},
    "As I said the loss is nan after epoch 2": {"symptom_loss_nan": True},
    "Loss becomes nan because of the sqrt in my loss; adding 1e-8 before the sqrt solved it.":
        {"symptom_epsilon_helps": True, "symptom_loss_nan": True},
    # A change tried in vain speaks against the cause it would have fixed.
    "I tried clipnorm=1 but still nan after the second epoch": {"symptom_clipping_futile": True,
                                                               "symptom_clipping_helps": None},
    "even with class_weight={0:1, 1:50} it predicts only 0": {"symptom_rebalancing_futile": True},
    "Replaced relu with LeakyReLU everywhere, no difference, the output is still constant.":
        {"symptom_leaky_futile": True, "symptom_leaky_helps": None},
    "We are simply rescaling 0-255 to 0-1. The relative scale is still exactly the same.":
        {"symptom_scaling_futile": None},
}

#: Words that must not be read as the symptom they mention.
NEGATIVES = {
    # a link's words name a page, not the user's run
    "I followed https://example.com/fix-loss-is-nan-and-overfitting/ step by step": {"symptom_loss_nan", "symptom_gap"},
    "as in [this post](www.example.org/class-imbalance-always-predicts-same-class)": {"symptom_same_class"},
    "I was always going to use Adam": {"symptom_same_class"},
    "the predictions are 10% better with Adam": {"symptom_same_class"},
    "sometimes the prediction is 0": {"symptom_same_class"},
    "I added Dropout(0.5) and it did not help": {"symptom_regularization_hurts"},
    "the loss decreased and so did the val loss": {"symptom_gap", "symptom_loss_flat"},
    "I use logistic regression as a baseline": {"symptom_linear_task"},
    "I do not think that this is an overfitting problem": {"symptom_val_worse"},
    "I doubt the loss ever became nan": {"symptom_loss_nan"},
    "the loss is not nan": {"symptom_loss_nan"},
    "loss never becomes nan": {"symptom_loss_nan"},
    "there are no NaNs in my data and the loss is fine": {"symptom_loss_nan"},
    "The loss isn't stuck, it decreases fine": {"symptom_loss_flat"},
    "accuracy is not stuck anymore": {"symptom_loss_flat"},
    "no overfitting here, val loss is not increasing": {"symptom_val_worse"},
    "I don't think it's overfitting": {"symptom_val_worse"},
    "the model is not predicting the same class": {"symptom_same_class"},
    "I added noisy labels on purpose": {"symptom_jumpy"},
    "loss doesn't explode and doesn't oscillate": {"symptom_huge_loss", "symptom_jumpy"},
    "This is driving me crazy": {"symptom_huge_loss"},
    "the validation accuracy is 85%, training accuracy is 87%": {"symptom_gap"},
    "Training on TF 2.15 with Keras 3 and CIFAR-10": {"symptom_loss_value", "symptom_accuracy"},
    "my data has 3 classes and 1000 samples; I train with batch size 32 and lr 0.01 for 50 epochs":
        {"symptom_loss_value", "symptom_accuracy", "symptom_first_loss"},
    "I trained it on my own images and tested it on my own dataset": {"symptom_new_inputs_wrong"},
    "I found this answer on Stack Overflow": {"symptom_unsafe_math"},
    "the images are loaded with target_size=(224, 224)": {"symptom_large_targets"},
    "the salary column is one of my features": {"symptom_large_targets"},
    "I am not using a custom loss": {"symptom_custom_loss"},
    "my data has no NaN": {"symptom_data_nan"},
    "Generating with the trained models just gives me static": {"symptom_same_class"},
    "I use the dataset from the paper": {"symptom_own_data"},
    "after a few more epochs, validation accuracy drops to 0.5": {"symptom_collapse"},
    "my accuracy is wrong, only 40%": {"symptom_metric_doubt"},
    "I haven't changed anything in data or code": {"symptom_loss_flat"},
    "my data doesn't contain nans": {"symptom_data_nan"},
    "I use this repo on my own dataset and have the loss suddenly hitting nan": {"symptom_data_nan"},
    "I use Keras 2.3 and my model always predicts 1": {"symptom_version_difference", "symptom_outputs_one"},
    "Inputs are normalized and I checked no nan in data": {"symptom_scaling_helps"},
    "I deployed it in my Flask app and it works": {"symptom_new_inputs_wrong"},
    # shares of the classes, not accuracies
    "I have a dataset with 95% of data within one class and 5% of another.": {"symptom_accuracy"},
    "80% in one class, 15% in the other and 5% in each class after that": {"symptom_accuracy"},
    # a change that did not help, one only asked about or planned, a setup described: no remedy
    "I tried clipnorm=1.0 but the loss is still nan": {"symptom_clipping_helps"},
    "Would shuffling the data fix this?": {"symptom_shuffling_helps"},
    "Is it something in the optimizer or loss function (sparse_categorical_crossentropy) that works better with values "
    "between 0 and 1?": {"symptom_label_encoding_helps", "symptom_loss_change_helps"},
    "I normalize the inputs with StandardScaler and use Adam; the loss is stuck at 0.69":
        {"symptom_scaling_helps", "symptom_optimizer_change_helps"},
    "even with class_weight it predicts only 0": {"symptom_rebalancing_helps"},
    "after switching to Adam the loss doesn't go down either": {"symptom_optimizer_change_helps"},
    "using the default zero-initialization for biases is fine": {"symptom_initializer_change_helps"},
    "someone on reddit said raising the learning rate fixes this kind of plateau": {"symptom_higher_lr_helps"},
    "the answer above suggests that a smaller batch size fixes it": {"symptom_smaller_batch_helps"},
}


def facts_of(text: str) -> dict:
    facts = symptom_facts(shipped_kb(), text)
    keys = [f.key for f in facts]
    assert len(keys) == len(set(keys)), keys
    return {f.key: f.value for f in facts}


def check(text: str, expected: dict) -> None:
    found = facts_of(text)
    for key, value in expected.items():
        if value is None:
            assert key not in found, (text, key, found)
        else:
            assert key in found, (text, key, found)
            assert found[key] == (pytest.approx(value) if isinstance(value, float) else value), (text, key)


@pytest.mark.parametrize("text, expected", CASE_SYMPTOMS.items(), ids=range(len(CASE_SYMPTOMS)))
def test_public_case_symptoms(text, expected):
    check(text, expected)


@pytest.mark.skipif(CASES is None, reason="shared/cases is not checked out")
def test_every_public_case_symptom_has_expectations():
    for path in CASES.glob("*.json"):
        assert json.loads(path.read_text())["request"]["symptom"] in CASE_SYMPTOMS, path.name


@pytest.mark.parametrize("text, expected", FORUM.items(), ids=range(len(FORUM)))
def test_forum_phrasings(text, expected):
    check(text, expected)


def test_a_later_message_gives_only_what_the_user_tried():
    found = {f.key: f.value for f in tried_facts(shipped_kb(), "the loss is still nan; adding clipnorm didn't help")}
    assert found == {"symptom_clipping_futile": True}
    found = {f.key: f.value for f in tried_facts(shipped_kb(), "accuracy is 40% now. Adding class_weight fixed it")}
    assert found == {"symptom_rebalancing_helps": True}


def test_remedy_forms_that_say_an_outcome_are_tried_only_where_it_is_said():
    remedies = shipped_kb().phrases.remedies
    every = [form.pattern for form in remedies.helped]
    without_outcome = [form.pattern for form in remedies.helped if form.needs is None]
    assert without_outcome and len(without_outcome) < len(every)
    assert list(Remedies.able(remedies.helped, "the loss is nan from epoch 2")) == without_outcome
    assert list(Remedies.able(remedies.helped, "adding clipnorm fixed it")) == every
    futile = [form.pattern for form in remedies.futile]
    assert list(Remedies.able(remedies.futile, "even with class_weight it predicts only 0")) == \
        [form.pattern for form in remedies.futile if form.needs is None] != futile


@pytest.mark.parametrize("text, absent", NEGATIVES.items(), ids=range(len(NEGATIVES)))
def test_negated_or_unrelated_words_are_not_symptoms(text, absent):
    assert not absent & set(facts_of(text)), text


def test_notes_quote_the_users_words():
    text = "Hi, the loss is huge, 6.38e+03 at its worst and still 1.51 at the end"
    notes = {f.key: f.note for f in symptom_facts(shipped_kb(), text)}
    assert notes == {
        "symptom_huge_loss": 'you wrote "the loss is huge"',
        "symptom_max_loss": 'you wrote "the loss is huge, 6.38e+03 at its worst"',
        "symptom_loss_value": 'you wrote "6.38e+03 at its worst and still 1.51 at the end"',
    }
    assert symptom_facts(shipped_kb(), "stuck at 50%")[1].note == 'you wrote "stuck at 50%"'
    assert {f.source for f in symptom_facts(shipped_kb(), text, source="your Slack message")} == {"your Slack message"}


def test_every_fact_matches_the_vocabulary_and_quotes_the_text():
    for text in [*CASE_SYMPTOMS, *FORUM]:
        flat = " ".join(text.split())
        for fact in symptom_facts(shipped_kb(), text):
            assert isinstance(fact.value, PYTHON_TYPES[SYMPTOM_TYPES[fact.key]]), fact
            assert fact.value is not False
            quoted = re.fullmatch(r'you wrote "(.+)"', fact.note)
            assert quoted and quoted[1] in flat, fact


def test_symptom_must_be_text():
    with pytest.raises(EvidenceError):
        symptom_facts(shipped_kb(), None)


@pytest.mark.parametrize("text, asked, expected", [
    ("lr was 0.5", ["learning_rate"], {"learning_rate": 0.5}),
    ("learning rate = 1e-3", [], {"learning_rate": 0.001}),
    ("I use adam", ["optimizer"], {"optimizer": "adam"}),
    ("batch size 32", [], {"batch_size": 32}),
    ("yes", ["shuffle"], {"shuffle": True}),
    ("No.", ["from_logits"], {"from_logits": False}),
    ("Yes, I use BatchNormalization after every Dense layer", ["batch_norm"], {"batch_norm": True}),
    ("0.001", ["learning_rate"], {"learning_rate": 0.001}),
    ("about 50 epochs", ["epochs"], {"epochs": 50}),
    ("dropout of 20%", ["dropout"], {"dropout": 0.2}),
    ("Adam with lr 3e-4 and batch size 64", ["optimizer"],
     {"optimizer": "adam", "learning_rate": 0.0003, "batch_size": 64}),
    ("we use sgd with momentum 0.9", ["optimizer", "momentum"], {"optimizer": "sgd", "momentum": 0.9}),
    ("loss is binary cross entropy", [], {"loss": "binary_crossentropy"}),
    ("SparseCategoricalCrossentropy", ["loss"], {"loss": "sparse_categorical_crossentropy"}),
    ("my_focal_loss", ["loss"], {"loss": "my_focal_loss"}),
    ("softmax", ["output_activation"], {"output_activation": "softmax"}),
    ("I standardized the inputs with StandardScaler", ["input_scaling"], {"input_scaling": "standardize"}),
    ("It's binary", ["task"], {"task": "binary_classification"}),
    ("no batch norm", [], {"batch_norm": False}),
    ("shuffle=False", [], {"shuffle": False}),
    ("dropout 0.5, l2 0.01", [], {"dropout": 0.5, "l2": 0.01}),
    ("total params: 1,234,567 and 0 trainable params", ["trainable_params"],
     {"total_params": 1234567, "trainable_params": 0}),
    ("yes, sorted by label", ["sorted_by_label", "learning_rate"], {"sorted_by_label": True}),
    ("I don't know", ["shuffle"], {}),
    ("no idea", ["batch_norm"], {}),
    ("not sure about batch norm", ["batch_norm"], {}),
    ("I think 0.01 or 0.001", ["learning_rate"], {}),
    ("learning rate: fast", ["learning_rate"], {}),
    ("lr = -1", [], {}),
    ("the loss was nan", [], {}),
    ("relu", ["output_activation", "hidden_activation"], {}),
])
def test_answers(text, asked, expected):
    facts = answer_facts(shipped_kb(), text, asked)
    assert {f.key: f.value for f in facts} == expected
    assert all(f.source == "your answer" and f.note.startswith('you wrote "') for f in facts)


def test_answer_notes_quote_the_reply():
    (fact,) = answer_facts(shipped_kb(), "well, lr was 0.5 I think", ["learning_rate"])
    assert fact.note == 'you wrote "lr was 0.5 I think"'


WORDS = st.sampled_from([
    "loss", "val_loss", "accuracy", "val", "recall", "nan", "inf", "not", "no", "doesn't", "never", "stuck",
    "plateaus", "at", "around", "epoch", "epochs", "0", "0.5", "52%", "1e+08", "-3", "zero", "but", "and",
    "while", "goes", "down", "up", "from", "to", "first", "worst", ",", ".", "?", "(", ")", "lr", "=",
    "yes", "adam", "batch size", "dropout", "%", "vs", "between", "I don't know",
])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.lists(WORDS, max_size=30).map(" ".join))
def test_any_text_gives_symptom_facts(text):
    for fact in symptom_facts(shipped_kb(), text):
        assert fact.key in SYMPTOM_TYPES


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120) | st.lists(WORDS, max_size=20).map(" ".join),
       st.lists(st.sampled_from(sorted(shipped_kb().vocabulary)) | st.text(max_size=8), max_size=3))
def test_any_reply_gives_contract_facts(text, asked):
    for fact in answer_facts(shipped_kb(), text, asked):
        assert fact.key in shipped_kb().vocabulary


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, max_size=30).map(" ".join))
def test_the_reader_emits_only_the_symptoms_it_declares(text):
    from assistant.evidence.symptom import produces

    assert {fact.key for fact in symptom_facts(shipped_kb(), text)} <= produces(shipped_kb())


def test_the_cases_give_only_the_declared_symptoms():
    from assistant.evidence.symptom import produces

    declared = produces(shipped_kb())
    for text in [*CASE_SYMPTOMS, *FORUM]:
        assert {fact.key for fact in symptom_facts(shipped_kb(), text)} <= declared, text
