"""Our own MTCNN face detector: facenet-pytorch's API and pretrained weights, no torchvision."""
from .crops import crop_faces
from .detector import MTCNN, check_settings
from .images import to_rgb_array
from .nets import MTCNNWeightsError, ONet, PNet, RNet, load_nets

__all__ = ["MTCNN", "MTCNNWeightsError", "check_settings", "PNet", "RNet", "ONet", "load_nets", "crop_faces",
           "to_rgb_array"]
