"""Pre-labels: our current detections (MTCNN faces, classifier classes) written as the Suite label
files `spb upload dataset --include-label` uploads, so labelers correct boxes instead of drawing them."""
from .classes import PROTECTED, UNPROTECTED


class PreLabeler:
    """`PreLabeler(classifier_path, mtcnn_model_path=None)`; `label(frame) -> (boxes, classes)`:
    the main job's own detect -> crop -> classify pipeline, one frame at a time."""

    def __init__(self, classifier_path, mtcnn_model_path=None, threshold=0.5):
        from ..pipeline import MaskPipeline  # torch is heavy: only imported when pre-labels are asked for

        self.pipeline = MaskPipeline.load(classifier_path, mtcnn_model_path, threshold=threshold)

    def label(self, frame):
        """frame HxWx3 uint8 RGB -> boxes float32 (N,4) x1,y1,x2,y2, classes ['protected'|'unprotected']."""
        faces = self.pipeline([frame])[0]
        return faces.boxes, [PROTECTED if p >= self.pipeline.threshold else UNPROTECTED for p in faces.p_protected]
