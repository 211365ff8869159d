"""Our own MTCNN face detector: facenet-pytorch's API and pretrained weights, no torchvision."""
from .crops import crop_faces
from .detector import MTCNN, check_settings
from .nets import ONet, PNet, RNet, load_nets

__all__ = ["MTCNN", "check_settings", "PNet", "RNet", "ONet", "load_nets", "crop_faces"]
