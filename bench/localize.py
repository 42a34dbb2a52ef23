"""Which heatmap points best at the radiologists' boxes? Grad-CAM variants on a model, against a
heatmap fixed at the image centre, side by side in one run.

The variants: the layer weighed (the last block's output, 4x4 at 128 px, and the finer outputs
of the blocks before it), the method (Grad-CAM: channel weights from the mean gradient;
HiResCAM: the gradient times the features, cell by cell), averaging with the horizontally
flipped image, and the model run at twice its training size (a fully convolutional base and a
global pooling: the same weights take a larger image, and their last block is then 8x8). Chosen
on the boxes of the training and validation images, reported on the test images' boxes: the
count of hits (the map's maximum inside the box) for each, beside the centre's. With --auroc,
the mean AUROC on test.csv of the model at each input size (a variant only changes the map,
except the input size, which changes the scores too).

    python bench/localize.py [--model models/nih/model.weights.h5] [--auroc] [--sizes 1,2]
        [--layers "block 4 (last),block 3,block 2"] [--methods gradcam,hirescam] [--flips off,on]

Each variant takes 0.5 to 5 minutes on 2 CPU cores (the 256 px ones the longest): the filters
run a part of the grid.
"""

import argparse
import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pandas as pd  # noqa: E402

from chestxray.explain import Cam, localize  # noqa: E402
from chestxray.metadata import read_bboxes  # noqa: E402
from chestxray.paths import DATA_DIR  # noqa: E402
from chestxray.model import build_model, load_model  # noqa: E402
from chestxray.preprocessing import Preprocessing  # noqa: E402

LAYERS = {"block 4 (last)": "relu", "block 3": "conv4_block24_concat", "block 2": "conv3_block12_concat"}


def boxed_splits():
    """The box list restricted to the repository's images, with each image's split."""
    boxes = read_bboxes(os.path.join(DATA_DIR, "BBox_List_2017.csv.gz"))
    split = {}
    for name in ("train", "valid", "test"):
        for image in pd.read_csv(os.path.join(DATA_DIR, f"{name}.csv"))["Image"]:
            split[image] = name
    boxes = boxes[boxes["Image"].isin(split)].copy()
    boxes["split"] = boxes["Image"].map(split).replace({"train": "select", "valid": "select"})
    return boxes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "nih", "model.weights.h5"))
    parser.add_argument("--auroc", action="store_true", help="also the mean AUROC on test.csv at each input size")
    parser.add_argument("--sizes", default="1,2", help="input sizes, as multiples of the training size")
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--methods", default="gradcam,hirescam")
    parser.add_argument("--flips", default="off,on")
    args = parser.parse_args()
    layers = {title: LAYERS[title] for title in args.layers.split(",")}
    flips = [flip == "on" for flip in args.flips.split(",")]
    pre = Preprocessing.load(args.model)
    model = load_model(args.model)
    sizes = {}
    for factor in map(int, args.sizes.split(",")):
        net = build_model(len(pre.labels), None, factor * pre.image_size)  # the same weights take any size
        net.set_weights(model.get_weights())
        sizes[factor * pre.image_size] = (net, dataclasses.replace(pre, image_size=factor * pre.image_size))
    boxes = boxed_splits()
    images = os.path.join(DATA_DIR, "images")
    rows = []
    for size, (net, p) in sizes.items():
        for layer_title, layer in layers.items():
            for method in args.methods.split(","):
                for flip in flips:
                    per_box, _ = localize(net, boxes, images, p, cam=Cam(layer, method, flip))
                    per_box["split"] = per_box["Image"].map(dict(zip(boxes["Image"], boxes["split"])))
                    grid = net.get_layer(layer).output.shape[1]
                    row = {"size": size, "layer": f"{layer_title} ({grid}x{grid})", "method": method, "flip": flip}
                    for split, part in per_box.groupby("split"):
                        row[f"{split} hits"] = f"{int(part['hit'].sum())}/{len(part)}"
                        row[f"{split} centre"] = f"{int(part['centre_hit'].sum())}/{len(part)}"
                        row[f"{split} iou"] = round(float(part["iou"].mean()), 3)
                    rows.append(row)
                    print(row, flush=True)
    table = pd.DataFrame(rows)
    table["select"] = table["select hits"].str.split("/").str[0].astype(int)  # ranked on the selection boxes
    print()
    print(table.sort_values("select", ascending=False, kind="stable").drop(columns="select").to_string(index=False))
    if args.auroc:
        from chestxray.evaluate import mean_auroc

        test = pd.read_csv(os.path.join(DATA_DIR, "test.csv"))
        for size, (net, p) in sizes.items():
            scores = net.predict(p.batches(test, images, batch_size=16), verbose=0)
            print(f"mean AUROC on test.csv at {size} px: {mean_auroc(test[list(p.labels)].to_numpy(), scores):.3f}")


if __name__ == "__main__":
    main()
