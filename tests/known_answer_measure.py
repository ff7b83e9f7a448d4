"""Measures, from pixels and the object mask, what each known-answer class is made to differ in:
used by the tests of both generators (A, ``synthetic``; B, ``blobs``)."""

from __future__ import annotations

import cv2
import numpy as np

from explorer.data.base import ImageSet


def measure_attributes(data: ImageSet) -> dict[str, np.ndarray]:
    """Per image: object hue (circular mean, degrees), HSV saturation and luma, background luma
    (beyond a 2-px ring), contrast, Laplacian variance inside, solidity, area and centre."""
    out: dict[str, list[float]] = {
        key: []
        for key in ("hue", "sat", "contrast", "lap", "solidity", "area", "obj_luma", "bg_luma",
                    "cx", "cy")
    }  # fmt: skip
    kernel3 = np.ones((3, 3), np.uint8)
    kernel5 = np.ones((5, 5), np.uint8)
    for img_u8, mask in zip(data.images, data.extras["mask"], strict=True):
        img = img_u8.astype(np.float32) / 255.0
        inner = cv2.erode(mask, kernel3) > 0
        outer = cv2.dilate(mask, kernel5) == 0
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        h = np.deg2rad(hsv[..., 0][inner])
        out["hue"].append(float(np.rad2deg(np.arctan2(np.sin(h).mean(), np.cos(h).mean())) % 360))
        out["sat"].append(float(hsv[..., 1][inner].mean()))
        out["obj_luma"].append(float(grey[inner].mean()))
        out["bg_luma"].append(float(grey[outer].mean()))
        out["contrast"].append(float(abs(grey[inner].mean() - grey[outer].mean())))
        out["lap"].append(float(cv2.Laplacian(grey, cv2.CV_32F)[inner].var()))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea)
        out["solidity"].append(cv2.contourArea(c) / cv2.contourArea(cv2.convexHull(c)))
        out["area"].append(float(mask.sum()))
        ys, xs = np.nonzero(mask)
        out["cx"].append(float(xs.mean()))
        out["cy"].append(float(ys.mean()))
    return {k: np.asarray(v) for k, v in out.items()}
