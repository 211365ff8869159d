"""Face crops for the classifier and for `MTCNN.extract`."""
import cv2
import numpy as np


def crop_faces(frame, boxes, image_size=160, margin=0):
    """uint8 crops (N,S,S,3) of the boxes in an HxWx3 frame, resized with area averaging. `margin` is in
    pixels of the output crop (facenet-pytorch's meaning); boxes are clipped to the frame."""
    h, w = frame.shape[:2]
    out = np.zeros((len(boxes), image_size, image_size, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        mx = margin * (x2 - x1) / (image_size - margin)
        my = margin * (y2 - y1) / (image_size - margin)
        left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
        right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
        if right > left and bottom > top:
            out[i] = cv2.resize(frame[top:bottom, left:right], (image_size, image_size),
                                interpolation=cv2.INTER_AREA)
    return out
