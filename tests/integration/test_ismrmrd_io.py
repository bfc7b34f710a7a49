"""ISMRMRD reader: the real phantom sample against a numpy implementation of the ISMRMRD
conventions written here, and a synthetic cine file (h5py) with noise scans, navigator lines,
repeated averages, an asymmetric echo, partial Fourier and 2x readout oversampling, against the
ground truth it was made from."""
import json
import os
import xml.etree.ElementTree as ET

import h5py
import numpy as np

import common
from common import relerr, run, shared

NOISE, CALIB, NAV = 1 << 18, 1 << 19, 1 << 22  # flag n is bit n-1: 19, 20, 23


def fftc1(x, axis):
    return np.fft.fftshift(np.fft.fft(np.fft.ifftshift(x, axes=axis), axis=axis, norm="ortho"), axes=axis)


def ifftc1(x, axis):
    return np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(x, axes=axis), axis=axis, norm="ortho"), axes=axis)


def crop_readout(k, h):
    """Crop the readout (axis -2) to h pixels in image space."""
    ex = k.shape[-2]
    img = ifftc1(k, -2)
    s = ex // 2 - h // 2
    return fftc1(img[..., s:s + h, :], -2)


def header_geometry(xml):
    root = ET.fromstring(xml)
    ns = {"i": "http://www.ismrm.org/ISMRMRD"}
    enc = root.find("i:encoding", ns)
    g = lambda path: float(enc.find(path, ns).text)
    return dict(ex=int(g("i:encodedSpace/i:matrixSize/i:x")), ey=int(g("i:encodedSpace/i:matrixSize/i:y")),
                efov=g("i:encodedSpace/i:fieldOfView_mm/i:x"), rfov=g("i:reconSpace/i:fieldOfView_mm/i:x"),
                center=int(g("i:encodingLimits/i:kspace_encoding_step_1/i:center")))


def numpy_reader(path):
    with h5py.File(path, "r") as f:
        xml = f["dataset/xml"][0]
        acq = f["dataset/data"][()]
    geo = header_geometry(xml.decode() if isinstance(xml, bytes) else xml)
    head = acq["head"]
    keep = (head["flags"] & (NOISE | NAV | (1 << 23))) == 0
    phase, sl = head["idx"]["phase"], head["idx"]["slice"]
    T, Z = int(phase[keep].max()) + 1, int(sl[keep].max()) + 1
    C = int(head["active_channels"][keep][0])
    k = np.zeros((T, Z, C, geo["ex"], geo["ey"]), np.complex128)
    cnt = np.zeros((T, Z, geo["ey"]))
    lines = np.zeros((T, geo["ey"]), bool)
    for i in np.nonzero(keep)[0]:
        h = head[i]
        ns = int(h["number_of_samples"])
        data = acq["data"][i].view(np.complex64).reshape(C, ns)
        x = np.arange(ns) + geo["ex"] // 2 - int(h["center_sample"])
        y = int(h["idx"]["kspace_encode_step_1"]) - geo["center"] + geo["ey"] // 2
        t, z = int(h["idx"]["phase"]), int(h["idx"]["slice"])
        k[t, z, :, x, y] += data.T
        cnt[t, z, y] += 1
        lines[t, y] = True
    k /= np.maximum(cnt, 1)[:, :, None, None, :]
    h = int(round(geo["ex"] * geo["rfov"] / geo["efov"])) if geo["rfov"] < geo["efov"] else geo["ex"]
    return crop_readout(k, h), lines, int(np.sum(keep & ((head["flags"] & CALIB) != 0))), int(np.sum(head["flags"] & NOISE != 0))


class Ismrmrd(common.TmpCase):
    def convert(self, src, *extra):
        d, _ = super().convert(src, *extra)
        return d["kspace"], d["mask"]

    def test_real_phantom(self):
        p = shared("ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5")
        want, lines, ncal, nnoise = numpy_reader(p)
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["format"], "ISMRMRD")
        self.assertEqual(info["kspace_shape"], list(want.shape))
        self.assertEqual(info["kspace_shape"], [1, 1, 14, 192, 144])
        self.assertEqual(info["noise_scans"], nnoise)
        self.assertEqual(info["noise_scans"], 1)
        self.assertEqual(info["calibration_lines"], ncal)
        # fastMRI padding rule on the header: 144//2 - 54 = 18, 18 + 105 + 1 = 124
        self.assertEqual((info["pad_left"], info["pad_right"]), (18, 124))
        k, mask = self.convert(p, "--no-prewhiten")
        self.assertLess(relerr(k, want), 1e-5)
        np.testing.assert_array_equal(mask, lines[0].astype(np.uint8))
        # noise scans, kept for prewhitening: (coils, samples) exactly as stored
        with h5py.File(p, "r") as f:
            acq = f["dataset/data"][()]
        noise = [i for i in range(len(acq)) if int(acq["head"]["flags"][i]) & NOISE]
        want_noise = np.concatenate([acq["data"][i].view(np.complex64).reshape(14, -1) for i in noise], axis=1)
        got = common.tool("noise", p, self.path("noise.h5"))
        np.testing.assert_array_equal(got, want_noise)
        # default: prewhitened with W = L^-1, Psi = N N^H / n = L L^H (numpy's Cholesky)
        nz = want_noise.astype(np.complex128)
        L = np.linalg.cholesky(nz @ nz.conj().T / nz.shape[1])
        white = np.einsum("vc,tzchw->tzvhw", np.linalg.inv(L), want)
        kw, _ = self.convert(p)
        self.assertLess(relerr(kw, white), 1e-4)
        info = json.loads(run("info", p, "--json").stdout)
        self.assertTrue(info["prewhitened"])
        # SVD coil compression to 6 virtual coils keeps the 6 largest singular values of the
        # (coils x samples) data matrix and their energy share
        kc, _ = self.convert(p, "--no-prewhiten", "--virtual-coils", "6")
        self.assertEqual(kc.shape[2], 6)
        sv_all = np.linalg.svd(want[0, 0].reshape(14, -1), compute_uv=False)
        sv_v = np.linalg.svd(kc[0, 0].reshape(6, -1).astype(np.complex128), compute_uv=False)
        np.testing.assert_allclose(sv_v, sv_all[:6], rtol=1e-4)
        info = json.loads(run("info", p, "--json", "--no-prewhiten", "--virtual-coils", "6").stdout)
        self.assertAlmostEqual(info["compression_energy"], float(np.sum(sv_all[:6] ** 2) / np.sum(sv_all ** 2)), places=5)
        r = run("info", p, "--virtual-coils", "15", check=False)
        self.assertIn("exceeds the 14 coils", r.stderr)

    def test_synthetic_cine(self):
        rng = np.random.default_rng(21)
        T, Z, C, EX, EY, H = 3, 2, 2, 32, 16, 16
        truth = (rng.standard_normal((T, Z, C, EX, EY)) + 1j * rng.standard_normal((T, Z, C, EX, EY))).astype(np.complex64)
        real = shared("ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5")
        with h5py.File(real, "r") as f:
            dtype = f["dataset/data"].dtype
        center = EY // 2 - 2  # partial Fourier: lines 0..EY-3 exist around this centre
        rows = []
        expect = np.zeros_like(truth, dtype=np.complex128)
        sampled = np.zeros((T, EY), bool)

        def acq(flags, t, z, e1, data, center_sample):
            r = np.zeros(1, dtype)
            h = r["head"]
            h["version"], h["flags"], h["number_of_samples"] = 1, flags, data.shape[1]
            h["active_channels"], h["available_channels"], h["center_sample"] = C, C, center_sample
            h["idx"]["kspace_encode_step_1"], h["idx"]["slice"], h["idx"]["phase"] = e1, z, t
            r["data"][0] = data.astype(np.complex64).ravel().view(np.float32)
            r["traj"][0] = np.zeros(0, np.float32)
            rows.append(r)

        acq(NOISE, 0, 0, 0, (rng.standard_normal((C, EX)) + 0j), 0)
        for t in range(T):
            for z in range(Z):
                for e1 in range(t % 2, EY - 2, 2):  # every other line, shifted per frame
                    y = e1 - center + EY // 2
                    if y >= EY:
                        continue
                    line = truth[t, z, :, :, y]
                    if e1 == 4 and t == 0:
                        # two averages of the line: the reader must average them
                        acq(0, t, z, e1, line + 1.0, EX // 2)
                        acq(0, t, z, e1, line - 1.0, EX // 2)
                    elif e1 == 6:
                        # asymmetric echo: the first 4 samples were not acquired
                        acq(0, t, z, e1, line[:, 4:], EX // 2 - 4)
                        expect[t, z, :, 4:, y] = line[:, 4:]
                        sampled[t, y] = True
                        continue
                    else:
                        acq(CALIB if e1 < 4 else 0, t, z, e1, line, EX // 2)
                    expect[t, z, :, :, y] = line
                    sampled[t, y] = True
                acq(NAV, t, z, 0, 1e6 * np.ones((C, EX)), EX // 2)  # navigator: must be ignored
        xml = f"""<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>{EX}</x><y>{EY}</y><z>1</z></matrixSize><fieldOfView_mm><x>400</x><y>200</y><z>8</z></fieldOfView_mm></encodedSpace>
<reconSpace><matrixSize><x>{H}</x><y>{EY}</y><z>1</z></matrixSize><fieldOfView_mm><x>200</x><y>200</y><z>8</z></fieldOfView_mm></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{EY - 3}</maximum><center>{center}</center></kspace_encoding_step_1></encodingLimits>
<trajectory>cartesian</trajectory></encoding></ismrmrdHeader>"""
        p = self.path("cine.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("dataset/data", data=np.concatenate(rows))
            f.create_dataset("dataset/xml", data=[xml.encode()], dtype=h5py.string_dtype())
        info = json.loads(run("info", p, "--json").stdout)
        self.assertEqual(info["kspace_shape"], [T, Z, C, H, EY])
        self.assertEqual(info["mask"], "per_frame")
        self.assertEqual(info["noise_scans"], 1)
        self.assertEqual(info["calibration_lines"], sum(1 for t in range(T) for z in range(Z) for e1 in range(t % 2, 4, 2)))
        k, mask = self.convert(p, "--no-prewhiten")
        self.assertLess(relerr(k, crop_readout(expect, H)), 1e-5)
        np.testing.assert_array_equal(mask, sampled.astype(np.uint8))
        want, lines, _, _ = numpy_reader(p)
        self.assertLess(relerr(k, want), 1e-5)


if __name__ == "__main__":
    common.main()
