# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chest X-ray diagnosis with deep learning
#
# In this assignment you build a classifier that looks at a chest X-ray and gives,
# for each of 14 pathologies, the probability that it is present. You will:
#
# - prepare the NIH ChestX-ray14 data so that no patient sits in two data sets;
# - feed the images to the model through an input pipeline;
# - measure the class imbalance and write a loss that corrects for it;
# - adapt a DenseNet121 and train it;
# - evaluate a trained model with ROC curves and AUROC, with confidence intervals,
#   and turn its scores into probabilities you can read at face value;
# - look at where it "looks" with Grad-CAM.
#
# Three exercises are graded: `check_for_leakage` (exercise 1),
# `compute_class_freqs` (exercise 2) and `get_weighted_loss` (exercise 3).
# Write your code between `### START CODE HERE` and `### END CODE HERE` only,
# replacing each `None`, and do not edit the cells marked `UNQ_C`... beyond that.
# A test cell after each exercise tells you whether it is right.

# %% [markdown]
# ## Parameters
#
# Where the data and the models are, and how much training to do. The defaults
# run on the course's images in `data/nih/`; change them here (or pass them with
# papermill) to run on your own copy, or on the full data set.

# %% tags=["parameters"]
DATA_DIR = "data/nih"             # train.csv, valid.csv, test.csv
IMAGE_DIR = "data/nih/images"     # the PNG images those tables name
MODEL_DIR = "models/nih"          # densenet.hdf5 (ImageNet base weights), if you have it
SHIPPED_MODEL = "models/nih/model.weights.h5"  # the model this course ships, evaluated in section 5
RUN_DIR = "runs/course"           # where training writes its checkpoints and logs
IMAGE_SIZE = 320                  # pixels per side of the model's input
BATCH_SIZE = 8
SHORT_RUN_STEPS = 5               # batches in the first, short training run (section 4)
EPOCHS = 1                        # epochs of the full training run (section 4.1)
N_BOOT = 10000                    # bootstrap replicates for the confidence intervals
LANGUAGE = "en"                   # of the messages and figure labels: "en" or "pt-BR"

# %% [markdown]
# ## 1. Import packages
#
# - `numpy` and `pandas` for the tables, `matplotlib` and `seaborn` for plots;
# - `keras` (version 3, on TensorFlow) for the model;
# - `util`, the course's helpers, and the `chestxray` library under them, which
#   you can read to see how each step is done;
# - `public_tests`, the checks of your exercises.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up messages out of the notebook

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from keras import ops

import util
from chestxray import evaluate, train as training
from chestxray.model import build_model
from public_tests import check_for_leakage_test, compute_class_freqs_test, get_weighted_loss_test

keras.utils.set_random_seed(0)
util.set_language(LANGUAGE)

# %% [markdown]
# ## 2. Load the datasets
#
# The NIH ChestX-ray14 data set holds 112,120 frontal chest X-rays of 30,805
# patients. Each image carries labels for 14 pathologies, mined from its
# radiology report by text processing: they are good but not perfect.
#
# This course uses 1,188 of those images. The instructor split them by patient
# (`python -m chestxray split`) into:
#
# - `train.csv`: images to train the model;
# - `valid.csv`: images to tune the training (when to lower the learning rate, when to stop);
# - `test.csv`: images to measure the final model, 420 of them, as in the CheXNeXt study.
#
# ### 2.1 Loading the data

# %%
train_df = pd.read_csv(os.path.join(DATA_DIR, "train.csv"))
valid_df = pd.read_csv(os.path.join(DATA_DIR, "valid.csv"))
test_df = pd.read_csv(os.path.join(DATA_DIR, "test.csv"))
print(f"{len(train_df)} training, {len(valid_df)} validation and {len(test_df)} test images")
train_df.head()

# %% [markdown]
# Each row is an image: its file name, a 0/1 column per pathology, and the
# patient. `labels` holds the 14 pathology columns, in the order the model
# outputs them, under the names of the NIH's table; `names` holds them as the
# figures and tables below write them:

# %%
labels = util.LABELS
names = [util.label_name(label) for label in labels]  # for figures and tables
print(names)

# %% [markdown]
# **The word "class".** You will meet it in three senses. Each of the 14
# pathologies is a class: the model has one output per class. Within one
# pathology, the two values of its label, positive (1) and negative (0), are
# also called classes, as in "class imbalance" below. And in code, a class is
# a Python type, such as the `Preprocessing` class of `chestxray`. The
# context always tells which one is meant.

# %% [markdown]
# ### 2.2 Preventing data leakage
#
# A patient may have several X-rays, taken at different visits. If one of them is
# in the training set and another in the test set, the model may recognise the
# *patient* (the shape of the ribs, a pacemaker) rather than the disease, and the
# test scores come out too good. This is **data leakage**: the test set must hold
# patients the model has never seen.
#
# ### Exercise 1: checking for leakage
#
# Write a function that says whether any patient appears in both of two data
# sets.
#
# <details><summary><b>Hints</b></summary>
#
# - `set(df[patient_col])` is the set of patients of a frame.
# - `a.intersection(b)` (or `a & b`) keeps what two sets share.
# - An empty set counts as false in an `if`; `len(s) > 0` is a bool.
# </details>

# %%
# UNQ_C1 (UNIQUE CELL IDENTIFIER, DO NOT EDIT)
def check_for_leakage(df1, df2, patient_col):
    """
    Return True if any patient is in both df1 and df2.

    Args:
        df1 (dataframe): dataframe describing the first data set
        df2 (dataframe): dataframe describing the second data set
        patient_col (str): name of the column with the patient IDs

    Returns:
        leakage (bool): True if there is leakage, otherwise False
    """
    ### START CODE HERE (REPLACE INSTANCES OF 'None' with your code) ###
    df1_patients_unique = set(df1[patient_col])
    df2_patients_unique = set(df2[patient_col])
    # the patients present in both data sets
    patients_in_both_groups = df1_patients_unique.intersection(df2_patients_unique)
    # True if there is at least one patient in both
    leakage = len(patients_in_both_groups) > 0
    ### END CODE HERE ###
    return leakage


# %%
### do not edit this code cell
check_for_leakage_test(check_for_leakage)

# %% [markdown]
# **Expected output:** the two test cases print `leakage output: True` and
# `leakage output: False`, then `All tests passed.`
#
# Now check the course's splits:

# %%
print(f"leakage between train and valid: {check_for_leakage(train_df, valid_df, 'PatientId')}")
print(f"leakage between train and test: {check_for_leakage(train_df, test_df, 'PatientId')}")
print(f"leakage between valid and test: {check_for_leakage(valid_df, test_df, 'PatientId')}")

# %% [markdown]
# **Expected output:** `False` three times. (The original version of this
# course shipped training and validation files that shared patients, and this
# check printed `True` for them; our splits are made by patient, so there is
# none.)
#
# ### 2.3 Preparing the images
#
# The model needs every image at the same size, as numbers of a similar scale.
# `util.get_train_generator` and `util.get_test_and_valid_generator` build the
# input pipeline on `tf.data`: they read and decode the PNG files on all cores,
# resize them to `IMAGE_SIZE` pixels, standardise them, and repeat the single
# gray channel three times, because DenseNet121 was designed for colour images.
#
# - Training images are standardised each by its own mean and standard deviation.
# - Validation and test images are standardised with the mean and standard
#   deviation of a sample of 100 *training* images. In use, the model sees one
#   image at a time: nothing about the test set may be learned from it, and
#   batch statistics of test images are not available.
#
# The training generator can also apply **data augmentation**: it changes each
# training image at random every epoch (`horizontal_flip=True` mirrors half of
# them), so that the model sees more variety than the images themselves hold
# and learns less of their accidents. Validation and test images are never
# augmented: they measure the model on images as they are.

# %%
train_generator = util.get_train_generator(train_df, IMAGE_DIR, "Image", labels, batch_size=BATCH_SIZE,
                                           target_w=IMAGE_SIZE, target_h=IMAGE_SIZE)
valid_generator, test_generator = util.get_test_and_valid_generator(
    valid_df, test_df, train_df, IMAGE_DIR, "Image", labels, batch_size=BATCH_SIZE,
    target_w=IMAGE_SIZE, target_h=IMAGE_SIZE)
print(f"{len(train_generator)} training batches of {BATCH_SIZE}")

# %% [markdown]
# A look at one training image after preprocessing: its values are centred on 0.

# %%
x, y = train_generator[0]
plt.imshow(x[0, :, :, 0], cmap="gray")
plt.title(", ".join(name for name, value in zip(names, y[0]) if value) or "No Finding")
plt.axis("off")
plt.show()
print(f"mean {util.number(x[0].mean())}, standard deviation {util.number(x[0].std())}, shape {x.shape}")

# %% [markdown]
# ## 3. Model development
#
# ### 3.1 Class imbalance
#
# Most X-rays show none of a given pathology. Here is the share of training
# images with each label:

# %%
shares = pd.Series(np.mean(train_generator.labels, axis=0), index=names)
plt.figure(figsize=(10, 4))
sns.barplot(x=shares.index, y=shares.to_numpy(), color="steelblue")
plt.xticks(rotation=90)
plt.ylabel("share of training images")
plt.show()
rarest, commonest = shares.idxmin(), shares.idxmax()
print(f"Rarest: {rarest}, in {util.number(100 * shares[rarest], 1)}% of the training images. "
      f"Most common: {commonest}, in {util.number(100 * shares[commonest], 1)}%.")
print(f"{(shares < 0.1).sum()} of the {len(shares)} pathologies are present in fewer than 10% of the images.")

# %% [markdown]
# How common a finding is varies a lot from one pathology to another, and
# every one of them is absent from most images: the positive cases are the
# minority class of every label. (The course's images hold more positives than
# the full data set, where most images have no finding at all.)

# %% [markdown]
# With the ordinary binary cross-entropy, a rare label's many negative examples
# outweigh its few positive ones: the model lowers its loss most by predicting
# "absent" for it almost always. For each class, the loss of an example is
#
# $$\mathcal{L}_{\text{cross-entropy}}(x) = -\big(y \log f(x) + (1-y) \log(1-f(x))\big),$$
#
# where $f(x)$ is the model's probability and $y$ the label. Summed over a data
# set, the positives of a class contribute $freq_{p} \times$ their mean loss and
# the negatives $freq_{n} \times$ theirs, with
#
# $$freq_{p} = \frac{\text{number of positive examples}}{N}, \qquad
# freq_{n} = \frac{\text{number of negative examples}}{N}.$$
#
# ### Exercise 2: class frequencies
#
# Compute both frequencies for every label of a label matrix.
#
# <details><summary><b>Hints</b></summary>
#
# - `labels` has one row per example and one column per class.
# - Summing a 0/1 column counts its positives: `np.sum(labels, axis=0)` does all columns at once.
# - $N$ is the number of rows, `labels.shape[0]`; do not write a number.
# </details>

# %%
# UNQ_C2 (UNIQUE CELL IDENTIFIER, DO NOT EDIT)
def compute_class_freqs(labels):
    """
    Compute positive and negative frequencies for each class.

    Args:
        labels (np.array): matrix of labels, size (num_examples, num_classes)
    Returns:
        positive_frequencies (np.array): frequency of positives per class, size (num_classes)
        negative_frequencies (np.array): frequency of negatives per class, size (num_classes)
    """
    ### START CODE HERE (REPLACE INSTANCES OF 'None' with your code) ###
    # total number of examples (rows)
    N = labels.shape[0]
    positive_frequencies = np.sum(labels, axis=0) / N
    negative_frequencies = 1 - positive_frequencies
    ### END CODE HERE ###
    return positive_frequencies, negative_frequencies


# %%
### do not edit this code cell
compute_class_freqs_test(compute_class_freqs)

# %% [markdown]
# **Expected output:** `Pos Freqs: [0.8 0.4 0.8]`, `Neg Freqs: [0.2 0.6 0.2]`
# and `All tests passed.`
#
# The frequencies of our training set, and how much the positives and the
# negatives of each class weigh in the loss:

# %%
freq_pos, freq_neg = compute_class_freqs(train_generator.labels)
contributions = pd.DataFrame({"Class": names * 2,
                              "Label": ["Positive"] * len(labels) + ["Negative"] * len(labels),
                              "Value": np.concatenate([freq_pos, freq_neg])})
plt.figure(figsize=(10, 4))
sns.barplot(x="Class", y="Value", hue="Label", data=contributions)
plt.xticks(rotation=90)
plt.title("contribution to the loss, unweighted")
plt.show()

# %% [markdown]
# Weighting each class's positives by $w_{pos} = freq_{n}$ and its negatives by
# $w_{neg} = freq_{p}$ makes both contribute the same:
# $w_{pos} \times freq_{p} = w_{neg} \times freq_{n}$.

# %%
pos_weights, neg_weights = freq_neg, freq_pos
contributions["Value"] = np.concatenate([freq_pos * pos_weights, freq_neg * neg_weights])
plt.figure(figsize=(10, 4))
sns.barplot(x="Class", y="Value", hue="Label", data=contributions)
plt.xticks(rotation=90)
plt.title("contribution to the loss, weighted")
plt.show()

# %% [markdown]
# ### Exercise 3: the weighted loss
#
# The weighted loss of class $i$ over a batch is the mean, over its examples, of
#
# $$-\big(w_{pos,i}\, y \log(f(x) + \epsilon) + w_{neg,i}\, (1 - y) \log(1 - f(x) + \epsilon)\big),$$
#
# and the loss of the batch is the sum of these means over the classes. The
# small $\epsilon$ keeps the logarithm finite when a probability is exactly 0 or 1.
#
# Complete `weighted_loss` inside `get_weighted_loss`. Use Keras' tensor
# operations so that it runs inside the model's training step:
# `ops.mean` and `ops.log` (`from keras import ops`). `y_true[:, i]` is the
# column of class `i`.

# %%
# UNQ_C3 (UNIQUE CELL IDENTIFIER, DO NOT EDIT)
def get_weighted_loss(pos_weights, neg_weights, epsilon=1e-7):
    """
    Return a weighted loss function given negative and positive weights.

    Args:
        pos_weights (np.array): positive weight of each class, size (num_classes)
        neg_weights (np.array): negative weight of each class, size (num_classes)
        epsilon (float): added inside the logarithms

    Returns:
        weighted_loss (function): weighted loss function
    """
    def weighted_loss(y_true, y_pred):
        """
        Return the weighted loss value.

        Args:
            y_true (Tensor): true labels, size (num_examples, num_classes)
            y_pred (Tensor): predicted probabilities, size (num_examples, num_classes)
        Returns:
            loss (float): the sum over classes of each class's mean weighted loss
        """
        y_true = ops.cast(y_true, "float32")
        # initialize loss to zero
        loss = 0.0
        ### START CODE HERE (REPLACE INSTANCES OF 'None' with your code) ###
        for i in range(len(pos_weights)):
            # for each class, add the mean weighted loss of that class
            loss += ops.mean(-(pos_weights[i] * y_true[:, i] * ops.log(y_pred[:, i] + epsilon)
                               + neg_weights[i] * (1 - y_true[:, i]) * ops.log(1 - y_pred[:, i] + epsilon)))
        ### END CODE HERE ###
        return loss
    return weighted_loss


# %% [markdown]
# The test uses a large epsilon so that a missing or misplaced epsilon shows.

# %%
# The course's example uses epsilon = 1 (the further cases choose their own)
epsilon = 1

### do not edit anything below
get_weighted_loss_test(get_weighted_loss, epsilon)

# %% [markdown]
# **Expected output:** `L(y_pred_1) = -0.4956203`, `L(y_pred_2) = -0.4956203`,
# a difference of 0, and `All tests passed.`
#
# ### 3.2 DenseNet121
#
# DenseNet121 is a convolutional network in which each layer receives the
# feature maps of all the layers before it in its block. We take its
# convolutional part, trained on ImageNet when the weights are available, and
# add two layers:
#
# 1. a `GlobalAveragePooling2D` layer, which averages each feature map into one number;
# 2. a `Dense` layer with a sigmoid per label, which gives the 14 probabilities.
#
# Starting from weights learned on another task and training them further on
# ours is **transfer learning**: the edges, textures and shapes a network
# learns from ImageNet's million photographs are a better start for X-rays
# than random numbers, and the CheXNet and CheXNeXt models started there.
# This module ships no ImageNet weights: Keras downloads them from the
# internet (`weights="imagenet"`), which the machines this course was built on
# cannot reach. So the base starts from random weights unless you put the
# file `densenet.hdf5` in `MODEL_DIR` (`models/nih/README.md` says how to make
# it). The model the course ships started from random weights too, which is
# one reason it is far weaker than the published ones; a short training run
# from random weights learns little.

# %%
base_weights = os.path.join(MODEL_DIR, "densenet.hdf5")
base_weights = base_weights if os.path.exists(base_weights) else None
print(f"DenseNet121 base weights: {base_weights or 'random (no densenet.hdf5 found)'}")
model = build_model(len(labels), weights=base_weights, image_size=IMAGE_SIZE)
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=get_weighted_loss(pos_weights, neg_weights))
print(f"{util.number(model.count_params(), 0)} parameters")

# %% [markdown]
# ## 4. Training
#
# A first, short run: a few batches. `model.fit` takes the generators
# directly; a callback records the training loss after each batch (Keras
# reports the mean over the batches of the epoch so far), and we plot it.

# %%
batch_losses = []
record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batch_losses.append(logs["loss"]))
history = model.fit(train_generator, validation_data=valid_generator, steps_per_epoch=SHORT_RUN_STEPS,
                    validation_steps=2, epochs=1, verbose=2, callbacks=[record])
plt.plot(range(1, len(batch_losses) + 1), batch_losses, marker="o")
plt.xlabel("batch")
plt.ylabel("training loss (mean so far)")
plt.title("Training loss curve")
plt.show()

# %% [markdown]
# A handful of batches from random weights is too little to see a trend: the
# curve may go down or not. The next run trains for whole epochs and keeps the
# loss of each one.

# %% [markdown]
# ### 4.1 Training with callbacks (by default, one epoch on the same images)
#
# A real training run watches the validation loss and reacts to it. Keras
# callbacks run at the end of every epoch:
#
# - `ModelCheckpoint` saves the model whenever the validation loss improves, so
#   the best epoch is kept even if later ones get worse;
# - `TensorBoard` logs the losses for the TensorBoard viewer
#   (`tensorboard --logdir RUN_DIR/logs`);
# - `ReduceLROnPlateau` divides the learning rate by 10 when the validation loss
#   stops improving;
# - `EarlyStopping` stops when it has not improved for a few epochs, and goes
#   back to the best weights.
#
# `chestxray.train.train` sets up EarlyStopping, ReduceLROnPlateau and
# TensorBoard, with the weighted loss and the same input pipeline. It keeps the
# best epoch and the history itself, as ModelCheckpoint and CSVLogger would, but
# writes every file whole, so that a run stopped at any moment resumes where it
# was. On two CPU cores an epoch over our training images takes several minutes;
# on the full data set, train on a GPU (see the README). It writes
# `model.keras`, the loss curves and `preprocessing.json` into `RUN_DIR`. With
# the default `EPOCHS = 1` it is one epoch over the same training images as
# above, from a fresh model; raise `EPOCHS` for a real run.

# %%
model = training.train(train_df, valid_df, IMAGE_DIR, RUN_DIR, epochs=EPOCHS, batch_size=BATCH_SIZE,
                       image_size=IMAGE_SIZE, weights=base_weights, verbose=2)
util.table(pd.read_csv(os.path.join(RUN_DIR, "history.csv")).set_index("epoch"), digits=4)

# %% [markdown]
# One epoch on a few hundred images cannot make a good model. The course ships
# one made by the same `train` function on the same training images, with a
# longer recipe (more epochs, data augmentation, a learning-rate schedule, an
# average of the weights): `models/nih/model.weights.h5`. Its model card,
# `models/nih/README.md`, says how it was trained and how good it is.
#
# ### 4.2 Preprocessing: evaluate a model the way it was trained
#
# The course's generators standardise *training* images each by its own mean and
# standard deviation, and *test* images by the mean and standard deviation of a
# sample of training images. A model trained on the first and tested on the
# second sees other numbers at test time than in training: measured on a model
# trained from scratch on these images, that mismatch cost about 0.1 of mean
# AUROC. `train` uses one standardisation for both and writes it, with the
# image size, into `preprocessing.json` beside the model; evaluation, prediction
# and Grad-CAM all read it from there. So the shipped model is evaluated below
# with its own preprocessing, not with the course's test generator.

# %%
if os.path.exists(SHIPPED_MODEL):
    model, preprocessing = util.load_trained_model(SHIPPED_MODEL)
else:
    model, preprocessing = util.load_trained_model(os.path.join(RUN_DIR, "model.keras"))
test_generator = preprocessing.batches(test_df, IMAGE_DIR, batch_size=BATCH_SIZE)

# %% [markdown]
# ## 5. Prediction and evaluation
#
# The model's score for every label of every test image, in the order of `test.csv`:

# %%
predicted_vals = model.predict(test_generator, verbose=0)
print(predicted_vals.shape)

# %% [markdown]
# ### 5.1 ROC curve and AUROC
#
# For one label, the ROC curve plots the true positive rate against the false
# positive rate as the decision threshold moves from 1 to 0. The area under it,
# the AUROC, is the probability that a random positive image gets a higher score
# than a random negative one: 0.5 is chance, 1 is perfect. A curve further to
# the top left has more area under it.

# %%
auc_rocs = util.get_roc_curve(labels, predicted_vals, test_generator)

# %% [markdown]
# With 420 test images, some labels have only a handful of positive cases, and
# their AUROC could move a lot with another sample of patients. The CheXNeXt
# study (Rajpurkar et al. 2018) gave each AUROC a 95% confidence interval from
# 10,000 bootstrap replicates of the test set; we do the same.

# %%
metrics = evaluate.metrics_table(test_generator.labels, predicted_vals, labels, n_boot=N_BOOT)
print(f"mean AUROC on the test set: {util.number(metrics['auroc'].mean())}")
util.table(metrics[["auroc", "ci_low", "ci_high", "pr_auc", "positives", "note"]])

# %% [markdown]
# Beside the published results: CheXNet (Rajpurkar et al. 2017), and the
# radiologists and the algorithm of CheXNeXt, measured on other test sets.
# Compare the intervals, not the digits: a small test set gives wide intervals.

# %%
util.table(evaluate.comparison_table(metrics))

# %% [markdown]
# The published models were trained on the full data set (about 100,000
# images, from ImageNet weights), ours on 659 images from random weights. To
# read further on how the best models were built and measured:
#
# - CheXNet: Rajpurkar et al., "CheXNet: Radiologist-Level Pneumonia Detection
#   on Chest X-Rays with Deep Learning", 2017, <https://arxiv.org/abs/1711.05225>
# - CheXpert: Irvin et al., "CheXpert: A Large Chest Radiograph Dataset with
#   Uncertainty Labels and Expert Comparison", AAAI 2019, <https://arxiv.org/abs/1901.07031>
# - CheXNeXt: Rajpurkar et al., "Deep learning for chest radiograph diagnosis:
#   A retrospective comparison of the CheXNeXt algorithm to practicing
#   radiologists", *PLOS Medicine* 2018, <https://doi.org/10.1371/journal.pmed.1002686>

# %% [markdown]
# ### 5.2 From scores to probabilities
#
# The weighted loss makes every label's positives weigh as much as its
# negatives: the model learns as if every finding were present half the time.
# Its outputs rank images well (that is all AUROC measures) but overstate every
# finding: they are *scores*, not probabilities. Multiplying a score's odds by
# $p / (1 - p)$, where $p$ is the label's prevalence in the training set, puts it
# back at that prevalence (the prior correction); `preprocessing.json` keeps $p$.
# The ranking, and so the AUROC, does not change.

# %%
probabilities = preprocessing.calibrate(predicted_vals)
first = pd.DataFrame({"score": predicted_vals[0], "probability": probabilities[0],
                      "present": test_generator.labels[0].astype(int)}, index=names)
print(f"{test_df['Image'][0]}: the model's score and the probability for each label")
util.table(first.sort_values("probability", ascending=False))

# %% [markdown]
# Over the whole test set: the Brier score (mean squared error of the
# probabilities) and the expected calibration error are lower for the
# corrected probabilities, and their reliability curve lies closer to the
# diagonal.

# %%
compared = {"scores": predicted_vals, "probabilities": probabilities}  # the legend's and the table's names
evaluate.reliability_figure(test_generator.labels, compared, ax=plt.figure(figsize=(5, 5)).subplots())
plt.show()
util.table(evaluate.calibration_table(test_generator.labels, compared))

# %% [markdown]
# ### 5.3 Visualising what the model learned with Grad-CAM
#
# Deep networks are hard to interpret. Class activation maps show which regions
# of an image weigh most in a prediction. Grad-CAM weighs the feature maps of a
# convolutional layer by how much each one moves a class's score (its mean
# gradient), and adds them up into a heatmap over the image. Here the layer is
# the output of DenseNet121's third dense block (8x8 cells at 128 px, finer than
# the last block's 4x4), and each map is averaged with the map of the mirrored
# image: the model card says how that was chosen.
#
# A heatmap does not explain the reasoning behind a probability; it is a check
# that a radiologist can use to see whether a finding rests on the right part of
# the image. `util.compute_gradcam` preprocesses the image exactly as the
# evaluation did (here: the model's own preprocessing), and computes the maps of
# all the chosen labels at once; the titles give the probabilities.
#
# The 4 labels with the best AUROC:

# %%
labels_to_show = [labels[i] for i in np.argsort(np.nan_to_num(auc_rocs, nan=0.0))[::-1][:4]]
print([util.label_name(label) for label in labels_to_show])

# %% [markdown]
# For three of them, the test image that has the finding and that the model
# scores highest for it, with the maps of its findings among those four:

# %%
for label in labels_to_show[:3]:
    has_it = test_df[label].to_numpy() == 1
    row = np.flatnonzero(has_it)[np.argmax(predicted_vals[has_it, labels.index(label)])]
    shown = [other for other in labels_to_show if test_df[other][row] == 1]
    util.compute_gradcam(model, test_df["Image"][row], IMAGE_DIR, train_df, labels, shown,
                         preprocessing=preprocessing)

# %% [markdown]
# #### Does the heatmap point at the finding?
#
# For some of the course's images, NIH radiologists drew a box around a finding
# (`data/nih/BBox_List_2017.csv.gz`). The pointing game counts a hit when the
# heatmap's maximum falls inside the box. The baseline to beat is a "heatmap"
# that always points at the centre of the image: findings are often near the
# middle of the chest, so the centre hits some boxes without looking at
# anything.

# %%
hits = util.pointing_game(model, preprocessing, IMAGE_DIR)
util.table(hits, digits=2)

# %% [markdown]
# Compare the two counts before you trust a heatmap. This model's heatmaps hit
# fewer of the 40 boxes than the map fixed at the centre (7 against 9), and no
# more of the 10 test images' boxes (1 against 1); its card
# (`models/nih/README.md`) gives the figures of every map tried. The model ranks
# findings better than chance, but its maps do not show where the findings
# are. The saliency maps of a weak model are not localisation, and even
# for strong models saliency methods fall short of radiologists at localising
# findings (Saporta et al., "Benchmarking saliency methods for chest X-ray
# interpretation", *Nature Machine Intelligence*, 2022). This is a teaching
# model, not a medical device.
#
# Three boxed test images: the heatmap of the boxed finding, with the
# radiologist's box (green) and the map's maximum (x), beside the centre
# baseline; each title says whether it hit.

# %%
util.show_boxes(model, preprocessing, test_df, IMAGE_DIR, count=3)

# %% [markdown]
# ## Congratulations!
#
# You have prepared leakage-free data, corrected the class imbalance in the
# loss, trained a DenseNet121, measured a trained model with honest intervals,
# turned its scores into probabilities and looked at where it looks. The `chestxray` package does each of these steps at scale:
# see its README for training on the full data set and for the `evaluate`,
# `gradcam`, `localize` and `report` commands.
