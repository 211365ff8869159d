"""Pre-labels: our current detections (MTCNN faces, classifier classes) written as the Suite label
files `spb upload dataset --include-label` uploads, so labelers correct boxes instead of drawing them."""
from pathlib import Path

import numpy as np

from ..errors import UserError
from .classes import PROTECTED, UNPROTECTED


class PreLabeler:
    """`PreLabeler(detector_model_path, mtcnn_weights_path=None)`; `label(frame) -> (boxes, classes)`."""

    def __init__(self, detector_model_path, mtcnn_weights_path=None, threshold=0.5):
        from mtcnn import MTCNN, crop_faces  # torch is heavy: only imported when pre-labels are asked for

        from ..classifier import load_classifier

        if mtcnn_weights_path is not None and not Path(mtcnn_weights_path).is_file():
            raise UserError(f"{mtcnn_weights_path}: no such MTCNN checkpoint")
        self.classifier = load_classifier(detector_model_path)
        settings = dict(self.classifier.mtcnn_settings)
        self.image_size, self.margin = int(settings.get("image_size", 160)), settings.get("margin", 0)
        self.detector = MTCNN(**settings, keep_all=True, select_largest=False, weights_path=mtcnn_weights_path)
        self.crop_faces = crop_faces
        self.threshold = threshold

    def label(self, frame):
        """frame HxWx3 uint8 RGB -> boxes float32 (N,4) x1,y1,x2,y2, classes ['protected'|'unprotected']."""
        boxes, _ = self.detector.detect(frame)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes, []
        crops = self.crop_faces(frame, boxes, self.image_size, self.margin)
        probs = self.classifier.predict(crops)
        return boxes, [PROTECTED if p >= self.threshold else UNPROTECTED for p in probs]
