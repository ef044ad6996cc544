"""The Fine-tune widget's form: its controls (with their ranges, defaults and tooltips) and its rows.

``build_finetune_form`` makes the controls and lays them out in the widget's form; the widget keeps each
as an attribute of the same name and wires their signals to its own methods (``finetune.FinetuneWidget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from ..config import ModelConfig
from ..engine.finetune_settings import REFINE_BUDGET, REFINE_STEPS
from ._controls import DeviceCombo, LayerCombo, PaintedSlicesLabel, field_row, spin_box
from ._jobs import section
from ._session import ModelPicker

__all__ = ["FinetuneControls", "build_finetune_form", "WHOLE_SLICES", "SCRIBBLES"]

#: the annotation modes of the mode box
WHOLE_SLICES = "whole slices"
SCRIBBLES = "scribbles"
#: said plainly, as measured (docs/method.md, "Reading the clusters")
CLUSTER_BANK_TIP = ("a memory bank whose clusters mean something in the Clusters widget: at 1/4 of the input "
                    "(lite's usual 1/16 and 1/32 cells mix organs), class-tied W-LD writes and the cluster loss "
                    "(napari-smp ... --cluster-bank). Measured in one 180 s completion each, 3 painted slices, "
                    "2-core CPU: 26-42 % fewer steps, Dice on the never-painted slices +0.014 (phantom), -0.009 "
                    "(abdominal CT, whose network was then left out), -0.001 (brain MR), +0.009 (lung lesion); its "
                    "clusters come near what the network itself labels (docs/method.md, 'Reading the clusters')")


@dataclass
class FinetuneControls:
    """The Fine-tune form's controls, each under the name the widget gives it.

    Attributes:
        add_slice_button: "+ this slice", beside the background slices (the widget wires it; it keeps
            no attribute for it).
        browse_button: "...", beside the save path (likewise).
    """

    image_combo: LayerCombo
    labels_combo: LayerCombo
    summary_label: PaintedSlicesLabel
    dense_label: QLabel
    mode_combo: QComboBox
    background_spin: QSpinBox
    start_picker: ModelPicker
    steps_spin: QSpinBox
    budget_spin: QDoubleSpinBox
    k_spin: QSpinBox
    k_low_spin: QDoubleSpinBox
    k_high_spin: QDoubleSpinBox
    k_policy_combo: QComboBox
    size_spin: QSpinBox
    memory_check: QCheckBox
    cluster_bank_check: QCheckBox
    background_edit: QLineEdit
    add_slice_button: QPushButton
    device_combo: DeviceCombo
    save_edit: QLineEdit
    browse_button: QPushButton
    fill_check: QCheckBox
    refine_button: QPushButton
    next_button: QPushButton


def build_finetune_form(form: QFormLayout, viewer: Any) -> FinetuneControls:
    """Make the Fine-tune controls and add their rows to ``form``; no signal is connected here.

    Args:
        form: the widget's form (``JobWidget.form``).
        viewer: the napari viewer the layer pickers follow.
    """
    import napari

    image_combo = LayerCombo(viewer, napari.layers.Image)
    labels_combo = LayerCombo(viewer, napari.layers.Labels)
    summary_label = PaintedSlicesLabel()
    dense_label = QLabel("")  # "this looks like a ground truth ..." under the picker
    dense_label.setWordWrap(True)
    dense_label.setStyleSheet("color: #e5a50a")  # amber: readable on napari's dark and light themes
    dense_label.hide()
    mode_combo = QComboBox()
    mode_combo.addItems([WHOLE_SLICES, SCRIBBLES])
    mode_combo.setToolTip("whole slices: an axial slice with any label is annotated, and 0 on it is "
                          "background; scribbles: 0 = not annotated (napari's convention), background is "
                          "painted with its own label, strokes may lie in any plane, and only painted "
                          "pixels are trained on")
    background_spin = spin_box(QSpinBox(), 1, 65_535, 1)
    background_spin.setPrefix("background = label ")
    background_spin.setToolTip("the label you paint background with (written as 0 in the result)")
    background_spin.setVisible(False)
    start_picker = ModelPicker(presets=("lite", "paper"))
    # the time budget governs by default; steps only cap a run when set
    steps_spin = spin_box(QSpinBox(), 0, 100_000, 0)
    steps_spin.setSpecialValueText("no cap")
    steps_spin.setToolTip("most optimiser steps; no cap = train until the time budget (300 without one)")
    budget_spin = spin_box(QDoubleSpinBox(), 0, 86_400, 120)
    budget_spin.setSuffix(" s")
    budget_spin.setToolTip("wall-clock time of the whole run, propagation and prediction included; "
                           "0 = no limit (then the steps end the run)")
    k_spin = spin_box(QSpinBox(), 0, 100_000, 0)
    k_spin.setSpecialValueText("auto (M/2)")
    k_low_spin = spin_box(QDoubleSpinBox(), 0.0, 1.0, 0.25, step=0.05)
    k_high_spin = spin_box(QDoubleSpinBox(), 0.0, 1.0, 0.75, step=0.05)
    k_policy_combo = QComboBox()
    k_policy_combo.addItems(["reset", "clamp"])
    k_policy_combo.setToolTip("reset: K jumps back to M/2 when it leaves the bounds (the paper); "
                              "clamp: K stops at the bound")
    size_spin = spin_box(QSpinBox(), 0, 1024, 0, step=32)
    size_spin.setSpecialValueText("preset's (lite 128, paper 256)")
    size_spin.setSuffix(" px")
    size_spin.setToolTip("side slices are resized to for the network, a multiple of 32; larger keeps "
                         "thin structures of a fine grid, at a higher cost per step")
    memory_check = QCheckBox("memory bank (DMW-LA + W-LD)")
    memory_check.setChecked(bool(ModelConfig(preset="lite").use_memory))  # lite's, as the widget's _memory_preset
    # said plainly, as measured (docs/method.md sections 10.7-10.8): the bank does not pay on average
    memory_check.setToolTip("the paper's prototype memory (DMW-LA at 1/16 and 1/32): needed for the "
                            "Clusters widget and the K curve. Off by default for lite: in our 2-core CPU "
                            "benchmark, at equal time, it scored -0.005 (abdominal CT), 0.000 (phantom), "
                            "+0.027 (CT lung lesion) and -0.046 (MR brain lesion) against the same network "
                            "without it, with 10-20 % fewer steps (docs/method.md sections 10.7-10.8); "
                            "on for paper")
    cluster_bank_check = QCheckBox("laid out for Clusters (1/4, cluster loss)")
    cluster_bank_check.setEnabled(memory_check.isChecked())
    cluster_bank_check.setToolTip(CLUSTER_BANK_TIP)
    background_edit = QLineEdit()
    background_edit.setPlaceholderText("none; e.g. 3, 17, 40")
    background_edit.setToolTip("slices with no structure of interest, counted as painted background; "
                               "a few of them keep a lesion model from marking healthy slices")
    add_slice = QPushButton("+ this slice")
    add_slice.setToolTip("add the axial slice shown in the viewer")
    background_row = field_row(background_edit, add_slice)
    device_combo = DeviceCombo()
    save_edit = QLineEdit()
    browse = QPushButton("...")
    browse.setFixedWidth(32)
    save_row = field_row(save_edit, browse)
    fill_check = QCheckBox("fill the volume (propagation + network)")
    fill_check.setChecked(True)
    fill_check.setToolTip("on: the painting is propagated along the image (a first result in seconds), "
                          "then pooled with the fine-tuned network into a new Labels layer (scribbles: "
                          "axial slices with a background and a structure's stroke grown into whole "
                          "slices first); off: fine-tune and save the model only")
    refine_button = QPushButton("Refine from last model")
    refine_button.setToolTip(f"a correction: paint on any slice, then go on from this session's last model "
                             f"for at most {REFINE_STEPS} steps and {REFINE_BUDGET:g} s")
    # where to paint next (engine/inference/suggest.py): the least certain slice of the last completion
    next_button = QPushButton("Go to the slice to paint next")
    next_button.setEnabled(False)

    form.addRow("image", image_combo)
    form.addRow("painted labels", labels_combo)
    form.addRow("annotation", field_row(mode_combo, background_spin))
    form.addRow(summary_label)
    form.addRow(dense_label)
    form.addRow("background slices", background_row)
    form.addRow("start from", start_picker)
    form.addRow("input size", size_spin)
    form.addRow(memory_check)
    form.addRow(cluster_bank_check)
    form.addRow("steps", steps_spin)
    form.addRow("time budget", budget_spin)
    form.addRow(section("W-LD memory size K"))
    form.addRow("K start", k_spin)
    form.addRow("K low (x M)", k_low_spin)
    form.addRow("K high (x M)", k_high_spin)
    form.addRow("out of bounds", k_policy_combo)
    form.addRow("device", device_combo)
    form.addRow("save to", save_row)
    form.addRow(fill_check)
    form.addRow(field_row(refine_button, next_button))
    return FinetuneControls(
        image_combo=image_combo, labels_combo=labels_combo, summary_label=summary_label, dense_label=dense_label,
        mode_combo=mode_combo, background_spin=background_spin, start_picker=start_picker, steps_spin=steps_spin,
        budget_spin=budget_spin, k_spin=k_spin, k_low_spin=k_low_spin, k_high_spin=k_high_spin,
        k_policy_combo=k_policy_combo, size_spin=size_spin, memory_check=memory_check,
        cluster_bank_check=cluster_bank_check,
        background_edit=background_edit, add_slice_button=add_slice, device_combo=device_combo,
        save_edit=save_edit, browse_button=browse, fill_check=fill_check, refine_button=refine_button,
        next_button=next_button)
