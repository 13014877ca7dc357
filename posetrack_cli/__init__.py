"""posetrack: multi-person 2D pose tracking in video.

Implements "Simple Baselines for Human Pose Estimation and Tracking" (Xiao, Wu, Wei, ECCV 2018):
a person detector, a ResNet + deconvolution heatmap network, optical-flow joint propagation and
greedy flow-OKS matching. Heavy modules (torch) are imported by the submodules that need them, so
``import posetrack_cli`` and ``posetrack --help`` stay fast.
"""

__version__ = "0.1.0"
