"""fastMRI's U-Net regulariser (the one inside E2E-VarNet), written from the published module's
behaviour (facebookresearch/fastMRI fastmri/models/unet.py): ConvBlock = [conv3x3 no bias,
InstanceNorm2d, LeakyReLU(0.2), Dropout2d, conv3x3, InstanceNorm2d, LeakyReLU(0.2)],
TransposeConvBlock = [ConvTranspose2d(2, stride 2, no bias), InstanceNorm2d, LeakyReLU(0.2)],
2x2 average pooling down, skip concatenation (upsampled first), final 1x1 conv with bias.
Module names match fastMRI's, so state_dict keys are the bundle keys of docs/model.md."""
import torch
from torch import nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, drop=0.0):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Dropout2d(drop),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Dropout2d(drop))

    def forward(self, x):
        return self.layers(x)


class TransposeConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.layers = nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.InstanceNorm2d(cout),
                                    nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.layers(x)


class Unet(nn.Module):
    """in/out channels 2 ([Re, Im]); inputs must be multiples of 2**pools (the caller pads)."""

    def __init__(self, chans=18, pools=4, in_chans=2, out_chans=2):
        super().__init__()
        self.pools = pools
        self.down_sample_layers = nn.ModuleList([ConvBlock(in_chans, chans)])
        ch = chans
        for _ in range(pools - 1):
            self.down_sample_layers.append(ConvBlock(ch, ch * 2))
            ch *= 2
        self.conv = ConvBlock(ch, ch * 2)
        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for _ in range(pools - 1):
            self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch))
            self.up_conv.append(ConvBlock(ch * 2, ch))
            ch //= 2
        self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch))
        self.up_conv.append(nn.Sequential(ConvBlock(ch * 2, ch), nn.Conv2d(ch, out_chans, 1)))

    def forward(self, x):
        stack = []
        for layer in self.down_sample_layers:
            x = layer(x)
            stack.append(x)
            x = F.avg_pool2d(x, 2, 2)
        x = self.conv(x)
        for tconv, conv in zip(self.up_transpose_conv, self.up_conv):
            x = torch.cat([tconv(x), stack.pop()], dim=1)
            x = conv(x)
        return x


def pad_to(x, m):
    """Zero-pads (..., h, w) to the next multiples of m, centred with the floor on top/left
    (docs/model.md); returns the padded tensor and the (top, left) offsets."""
    h, w = x.shape[-2:]
    H, W = -(-h // m) * m, -(-w // m) * m
    oy, ox = (H - h) // 2, (W - w) // 2
    return F.pad(x, (ox, W - w - ox, oy, H - h - oy)), (oy, ox)
