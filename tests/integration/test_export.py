"""Geometry and exports, checked with independent readers: nibabel (NIfTI), pydicom and dciodvfy
(DICOM), Pillow (GIF, PNG). The expected geometry is computed here with numpy from the ISMRMRD
header and acquisition headers, and from the input DICOM files with pydicom."""
import glob
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import h5py
import nibabel as nib
import numpy as np
import pydicom
from PIL import Image

import common
from common import run, shared

ISMRMRD = ("ismrmrd_grappa_r3_phantom", "meas_MID00349_FID09273_SNR_R3.h5")
SUNNY = ("sunnybrook_preclinical_cine_sax", "E774S5-shortAxis")
SKIP_FLAGS = sum(1 << (b - 1) for b in (19, 23, 24, 26, 27, 28))
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ismrmrd_expected(path):
    """Geometry of the ISMRMRD sample by the ISMRMRD conventions: the FOV centre (position) is the
    pixel (h//2, w//2) of the centred FFT; h runs along read_dir, w along phase_dir; pixel size is
    the encoded FOV over the encoded matrix; the readout is cropped to the recon FOV."""
    with h5py.File(path, "r") as f:
        xml = f["dataset/xml"][0]
        head = f["dataset/data"]["head"]
    root = ET.fromstring(xml.decode() if isinstance(xml, bytes) else xml)
    ns = {"i": "http://www.ismrm.org/ISMRMRD"}
    enc = root.find("i:encoding", ns)
    num = lambda p: float(enc.find(p, ns).text)
    ex, ey = num("i:encodedSpace/i:matrixSize/i:x"), num("i:encodedSpace/i:matrixSize/i:y")
    efx, efy, efz = (num(f"i:encodedSpace/i:fieldOfView_mm/i:{a}") for a in "xyz")
    rfx = num("i:reconSpace/i:fieldOfView_mm/i:x")
    center = int(num("i:encodingLimits/i:kspace_encoding_step_1/i:center"))
    h, w = int(round(ex * rfx / efx)), int(ey)
    dh, dw = efx / ex, efy / ey
    img = (head["flags"] & SKIP_FLAGS) == 0
    sel = np.nonzero(img & (head["idx"]["kspace_encode_step_1"] == center) & (head["idx"]["slice"] == 0))[0][0]
    pos = head["position"][sel].astype(np.float64)
    rd = head["read_dir"][sel].astype(np.float64)
    pd = head["phase_dir"][sel].astype(np.float64)
    rd, pd = rd / np.linalg.norm(rd), pd / np.linalg.norm(pd)
    corner = pos - (h // 2) * dh * rd - (w // 2) * dw * pd
    # NIfTI voxel (i, j, k) = (w, h, slice); one slice: k along the normal pd x rd, thickness apart
    normal = np.cross(pd, rd)
    A = np.eye(4)
    A[:3, 0], A[:3, 1], A[:3, 2], A[:3, 3] = dw * pd, dh * rd, efz * normal, corner
    A[:3] = LPS_TO_RAS @ A[:3]
    tick = 2.5 if "SIEMENS" in (root.findtext("i:acquisitionSystemInformation/i:systemVendor", "", ns)) else 1.0
    trig = tick * float(head["physiology_time_stamp"][sel][0])
    return dict(h=h, w=w, dh=dh, dw=dw, corner=corner, rd=rd, pd=pd, affine=A, thickness=efz, trigger=trig)


def dciodvfy_errors(files):
    exe = shutil.which("dciodvfy")
    if not exe:
        return None
    errs = []
    for f in files:
        r = subprocess.run([exe, f], capture_output=True, text=True, timeout=60)
        errs += [f"{os.path.basename(f)}: {l}" for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]
    return errs


def series_by_slice(dicom_dir):
    """Input DICOM files grouped by location along the slice normal (ascending), frames ordered by
    TriggerTime: pydicom's view of the series, independent of fmrecon."""
    ds = [pydicom.dcmread(f) for f in sorted(glob.glob(os.path.join(dicom_dir, "*")))]
    iop = np.array(ds[0].ImageOrientationPatient, float)
    n = np.cross(iop[:3], iop[3:])
    loc = lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), n))
    locs = sorted({round(loc(d), 2) for d in ds})
    groups = [sorted([d for d in ds if abs(loc(d) - l) < 0.01], key=lambda d: float(d.TriggerTime)) for l in locs]
    return groups


class Export(common.TmpCase):
    def p(self, *parts):
        return os.path.join(self.tmp, *parts)

    def setUp(self):
        super().setUp()
        self.outdir = self.p("bad")
        os.mkdir(self.outdir)

    def check_dicom_against(self, out_dir, rec, slope_tol=True):
        """Every instance: pixels x RescaleSlope + RescaleIntercept equal the HDF5 magnitude within one
        quantisation step; returns the instances as [slice][frame]."""
        T, Z = rec.shape[:2]
        series = []
        for z in range(Z):
            files = sorted(glob.glob(os.path.join(out_dir, f"slice_{z:02d}", "*.dcm")))
            self.assertEqual(len(files), T)
            inst = [pydicom.dcmread(f) for f in files]
            for t, d in enumerate(inst):
                self.assertEqual(d.SOPClassUID, "1.2.840.10008.5.1.4.1.1.4")
                self.assertEqual(int(d.InstanceNumber), t + 1)
                self.assertEqual(int(d.CardiacNumberOfImages), T)
                slope, icpt = float(d.RescaleSlope), float(d.RescaleIntercept)
                val = d.pixel_array.astype(np.float64) * slope + icpt
                self.assertEqual(val.shape, rec.shape[2:])
                self.assertLessEqual(np.abs(val - rec[t, z]).max(), slope * (0.5 + 1e-3), f"slice {z} frame {t}")
            self.assertEqual(len({d.SeriesInstanceUID for d in inst}), 1)
            series.append(inst)
        uids = [s[0].SeriesInstanceUID for s in series]
        self.assertEqual(len(set(uids)), Z, "one series per slice")
        self.assertEqual(len({d.StudyInstanceUID for s in series for d in s}), 1, "one study")
        sops = [d.SOPInstanceUID for s in series for d in s]
        self.assertEqual(len(set(sops)), len(sops))
        return series

    def test_ismrmrd_nifti_dicom_geometry(self):
        src = shared(*ISMRMRD)
        exp = ismrmrd_expected(src)
        out = self.p("r.h5")
        run("recon", src, "-o", out, "-q", "--export", "nifti,dicom", "--export-dir", self.p("x"))
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][()]
            geo = json.loads(f.attrs["geometry"])
        self.assertEqual(rec.shape[2:], (exp["h"], exp["w"]))
        self.assertTrue(geo["source"]["position"].startswith("read"), geo["source"])
        img = nib.load(self.p("x", "r.nii"))
        for form in (img.affine, img.header.get_qform(), img.header.get_sform()):
            np.testing.assert_allclose(form, exp["affine"], atol=1e-4)
        self.assertEqual(int(img.header["qform_code"]), 1)
        self.assertEqual(int(img.header["sform_code"]), 1)
        data = np.asarray(img.dataobj)
        self.assertEqual(data.dtype, np.float32)
        np.testing.assert_array_equal(data, np.transpose(rec, (3, 2, 1, 0)))
        # DICOM: the same geometry in LPS, an independent reader, and the validator
        series = self.check_dicom_against(self.p("x", "r_dicom"), rec)
        d = series[0][0]
        np.testing.assert_allclose(np.array(d.ImagePositionPatient, float), exp["corner"], atol=1e-4)
        np.testing.assert_allclose(np.array(d.ImageOrientationPatient, float), np.r_[exp["pd"], exp["rd"]], atol=1e-6)
        np.testing.assert_allclose(np.array(d.PixelSpacing, float), [exp["dh"], exp["dw"]], rtol=1e-8)
        self.assertAlmostEqual(float(d.SliceThickness), exp["thickness"])
        self.assertAlmostEqual(float(d.TriggerTime), exp["trigger"], places=3)
        self.assertEqual(int(d.Rows), exp["h"])
        self.assertEqual(int(d.Columns), exp["w"])
        # copied from the ISMRMRD header, never invented
        self.assertEqual(d.Manufacturer, "SIEMENS")
        self.assertEqual(d.StudyDate, "20190314")
        self.assertEqual(d.PatientPosition, "HFS")
        self.assertEqual(d.FrameOfReferenceUID, "1.3.12.2.1107.5.2.19.45387.1.20190310222831082.0.0.0")
        self.assertEqual(str(d.PatientName), "")
        self.assertEqual(d.PatientID, "")
        self.assertIn("PatientBirthDate", d)
        self.assertIn("zf", d.SeriesDescription)
        errs = dciodvfy_errors(glob.glob(self.p("x", "r_dicom", "*", "*.dcm")))
        if errs is None:
            print("SKIPPED dciodvfy check: dciodvfy (dicom3tools) not installed")
        else:
            self.assertEqual(errs, [])

    def check_enhanced(self, out, xdir):
        """--enhanced: one Enhanced MR instance per slice holding every frame; pixels within one
        quantisation step of the HDF5 magnitude, per-frame position and trigger delay, shared
        orientation, spacing and thickness against the HDF5 geometry; dciodvfy. Returns the first."""
        run("export", out, "-f", "dicom", "--enhanced", "-o", xdir, "-q")
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][()]
            geo = json.loads(f.attrs["geometry"])
        T, Z = rec.shape[:2]
        files, first = [], None
        for z in range(Z):
            fz = sorted(glob.glob(os.path.join(xdir, "r_dicom", f"slice_{z:02d}", "*.dcm")))
            self.assertEqual(len(fz), 1, "one instance per slice")
            files += fz
            d = pydicom.dcmread(fz[0])
            first = first or d
            self.assertEqual(d.SOPClassUID, "1.2.840.10008.5.1.4.1.1.4.1")
            self.assertEqual(int(d.NumberOfFrames), T)
            sh = d.SharedFunctionalGroupsSequence[0]
            pvt = sh.PixelValueTransformationSequence[0]
            slope, icpt = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
            px = d.pixel_array.reshape(T, *rec.shape[2:]).astype(np.float64)
            for t in range(T):
                self.assertLessEqual(np.abs(px[t] * slope + icpt - rec[t, z]).max(), slope * (0.5 + 1e-3), f"slice {z} frame {t}")
            np.testing.assert_allclose(np.array(sh.PlaneOrientationSequence[0].ImageOrientationPatient, float),
                                       np.r_[geo["dir_w"][z] if np.ndim(geo["dir_w"]) == 2 else geo["dir_w"],
                                             geo["dir_h"][z] if np.ndim(geo["dir_h"]) == 2 else geo["dir_h"]], atol=1e-6)
            np.testing.assert_allclose(np.array(sh.PixelMeasuresSequence[0].PixelSpacing, float), geo["pixel_spacing"][:2], rtol=1e-8)
            self.assertAlmostEqual(float(sh.PixelMeasuresSequence[0].SliceThickness), geo["slice_thickness"], places=4)
            pf = d.PerFrameFunctionalGroupsSequence
            self.assertEqual(len(pf), T)
            for t, fr in enumerate(pf):
                fc = fr.FrameContentSequence[0]
                self.assertEqual(int(fc.TemporalPositionIndex), t + 1)
                self.assertEqual([int(v) for v in fc.DimensionIndexValues], [1, 1, t + 1])
                np.testing.assert_allclose(np.array(fr.PlanePositionSequence[0].ImagePositionPatient, float),
                                           geo["position"][z], atol=1e-4)
                self.assertAlmostEqual(float(fr.CardiacSynchronizationSequence[0].NominalCardiacTriggerDelayTime),
                                       float(geo["trigger_time_ms"][t]), places=3)
        errs = dciodvfy_errors(files)
        if errs is None:
            print("SKIPPED dciodvfy check: dciodvfy (dicom3tools) not installed")
        else:
            self.assertEqual(errs, [])
        return first

    def test_enhanced_multiframe(self):
        src = shared(*ISMRMRD)
        exp = ismrmrd_expected(src)
        out = self.p("r.h5")
        run("recon", src, "-o", out, "-q")
        d = self.check_enhanced(out, self.p("x"))
        fr = d.PerFrameFunctionalGroupsSequence[0]
        np.testing.assert_allclose(np.array(fr.PlanePositionSequence[0].ImagePositionPatient, float), exp["corner"], atol=1e-4)
        self.assertAlmostEqual(float(fr.CardiacSynchronizationSequence[0].NominalCardiacTriggerDelayTime), exp["trigger"], places=3)
        np.testing.assert_allclose(np.array(d.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing, float),
                                   [exp["dh"], exp["dw"]], rtol=1e-8)
        self.assertEqual(d.Manufacturer, "SIEMENS")
        self.assertEqual(d.FrameOfReferenceUID, "1.3.12.2.1107.5.2.19.45387.1.20190310222831082.0.0.0")
        self.assertEqual(d.PatientID, "")

    def test_undersample_keeps_geometry_and_header(self):
        src = shared(*ISMRMRD)
        u = self.p("u.h5")
        run("undersample", src, "-o", u, "--mask", "keep", "-q")
        run("recon", src, "-o", self.p("a.h5"), "-q")
        run("recon", u, "-o", self.p("b.h5"), "-q")
        with h5py.File(src, "r") as f:
            xml = f["dataset/xml"][0]
        with h5py.File(u, "r") as f:
            self.assertEqual(f["ismrmrd_header"][()], xml)
        ga = json.loads(h5py.File(self.p("a.h5"), "r").attrs["geometry"])
        gb = json.loads(h5py.File(self.p("b.h5"), "r").attrs["geometry"])
        self.assertEqual(ga, gb)
        # a fastMRI-style file with only an ismrmrd_header: spacing and thickness read, position assumed
        with h5py.File(u, "a") as f:
            del f.attrs["geometry"]
        g = json.loads(run("info", u, "--json").stdout)["geometry"]
        exp = ismrmrd_expected(src)
        np.testing.assert_allclose(g["pixel_spacing"], [exp["dh"], exp["dw"]], rtol=1e-12)
        self.assertEqual(g["slice_thickness"], exp["thickness"])
        self.assertTrue(g["source"]["pixel_spacing"].startswith("read: ISMRMRD header"))
        self.assertTrue(g["source"]["position"].startswith("assumed"))
        self.assertEqual(g["subject"]["Manufacturer"], "SIEMENS")
        # maps files carry it too
        run("maps", src, "-o", self.p("m.h5"), "-q")
        self.assertEqual(json.loads(h5py.File(self.p("m.h5"), "r").attrs["geometry"]), ga)

    def test_assumed_geometry_and_overrides(self):
        run("simulate", "-o", self.p("sim"), "--frames", "4", "--slices", "2", "--coils", "2", "--matrix", "32x24", "-q")
        s = self.p("sim", "subject_000.h5")
        run("recon", s, "-o", self.p("d.h5"), "-q")
        g = json.loads(h5py.File(self.p("d.h5"), "r").attrs["geometry"])
        for k, v in g["source"].items():
            self.assertTrue(v.startswith("assumed"), f"{k}: {v}")
        self.assertEqual(g["pixel_spacing"], [1.0, 1.0])
        run("recon", s, "-o", self.p("o.h5"), "-q", "--pixel-spacing", "1.5,2", "--slice-thickness", "6",
            "--trigger-times", "30", "--export", "nifti,gif,png", "--export-dir", self.p("x"))
        g = json.loads(h5py.File(self.p("o.h5"), "r").attrs["geometry"])
        self.assertEqual(g["pixel_spacing"], [1.5, 2.0])
        self.assertEqual(g["trigger_time_ms"], [0, 30, 60, 90])
        self.assertIn("command line", g["source"]["pixel_spacing"])
        img = nib.load(self.p("x", "o.nii"))
        np.testing.assert_allclose(img.header.get_zooms(), [2.0, 1.5, 6.0, 30.0], rtol=1e-6)
        self.assertEqual(img.header.get_xyzt_units(), ("mm", "msec"))
        self.assertEqual(img.shape, (24, 32, 2, 4))
        np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :3], axis=0), [2.0, 1.5, 6.0], rtol=1e-6)
        with Image.open(self.p("x", "o_slice_01.gif")) as gif:
            self.assertEqual(gif.n_frames, 4)
            self.assertEqual(gif.size, (24, 32))
            durations, frames = [], []
            for k in range(gif.n_frames):
                gif.seek(k)
                durations.append(gif.info["duration"])
                frames.append(np.asarray(gif.convert("L"), float))
        self.assertEqual(durations, [30] * 4)
        # the frames are the slice's magnitude scaled to 0..255 by its maximum
        with h5py.File(self.p("o.h5"), "r") as f:
            rec = f["reconstruction"][:, 1]
        np.testing.assert_allclose(np.stack(frames), np.round(255 * rec / rec.max()), atol=1.0)
        with Image.open(self.p("x", "o_montage.png")) as png:
            png.load()
            self.assertEqual(png.size, (64 + 4 * 24, 26 + 18 + 2 * 32))
            title = np.asarray(png)[:26, :]
        self.assertGreater(int(title.max()), 128, "title text drawn")
        # complex NIfTI: the 'image' dataset, same geometry
        run("recon", s, "-o", self.p("c.h5"), "-q", "-m", "sense", "--complex", "--pixel-spacing", "1.5,2",
            "--export", "nifti", "--export-dir", self.p("c"))
        with h5py.File(self.p("c.h5"), "r") as f:
            im = f["image"][()]  # h5py reads the {r, i} compound as complex
        c = nib.load(self.p("c", "c_complex.nii"))
        self.assertEqual(c.get_data_dtype(), np.complex64)
        np.testing.assert_array_equal(np.asarray(c.dataobj), np.transpose(im, (3, 2, 1, 0)).astype(np.complex64))
        np.testing.assert_allclose(c.affine, nib.load(self.p("c", "c.nii")).affine)
        # a wrong number of trigger times is one clear line, nothing written
        self.expect_fail(["recon", s, "-o", os.path.join(self.outdir, "r.h5"), "-q", "--trigger-times", "1,2,3"],
                         "--trigger-times", "4 frames")

    def test_recon_preview(self):
        """recon --preview: a cine GIF per slice and the montage beside OUT, nothing else left there,
        and the same pixels as fmrecon export writes from the finished file."""
        run("simulate", "-o", self.p("sim"), "--frames", "3", "--slices", "2", "--coils", "2", "--matrix", "32x24", "-q")
        os.mkdir(self.p("pv"))
        out = self.p("pv", "p.h5")
        run("recon", self.p("sim", "subject_000.h5"), "-o", out, "-q", "--preview")
        self.assertEqual(sorted(os.listdir(self.p("pv"))),
                         ["p.h5", "p_montage.png", "p_slice_00.gif", "p_slice_01.gif"])
        run("export", out, "--format", "gif,png", "-o", self.p("ex"), "-q")
        for name in ("p_slice_00.gif", "p_slice_01.gif"):
            with Image.open(self.p("pv", name)) as a, Image.open(self.p("ex", name)) as b:
                self.assertEqual(a.n_frames, 3)
                for k in range(3):
                    a.seek(k), b.seek(k)
                    np.testing.assert_array_equal(np.asarray(a.convert("L")), np.asarray(b.convert("L")))
        with Image.open(self.p("pv", "p_montage.png")) as a, Image.open(self.p("ex", "p_montage.png")) as b:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        with h5py.File(out, "r") as f:
            rec = f["reconstruction"][:, 0]
        with Image.open(self.p("pv", "p_slice_00.gif")) as g:
            g.seek(2)
            np.testing.assert_allclose(np.asarray(g.convert("L"), float), np.round(255 * rec[2] / rec.max()), atol=1.0)

    def test_sunnybrook_round_trip(self):
        dicom_dir = shared(*SUNNY)
        groups = series_by_slice(dicom_dir)
        z0, nz = 8, 2
        run("simulate", "--from-dicom", dicom_dir, "--dicom-slices", f"{z0}:{z0 + nz}", "--coils", "4",
            "-o", self.p("sr"), "-q")
        k = self.p("sr", "subject_000.h5")
        with h5py.File(k, "r") as f:
            self.assertIn("semi-real", f.attrs["data_kind"])
            self.assertEqual(f["kspace"].shape, (20, nz, 4, 256, 256))
        # undersampling keeps the series' geometry
        run("undersample", k, "-o", self.p("u4.h5"), "--mask", "uniform", "--accel", "4", "-q")
        g_in = json.loads(h5py.File(k, "r").attrs["geometry"])
        self.assertEqual(json.loads(h5py.File(self.p("u4.h5"), "r").attrs["geometry"]), g_in)
        self.assertTrue(all(v.startswith("read: DICOM") for v in g_in["source"].values()), g_in["source"])
        out = self.p("r.h5")
        run("recon", k, "-o", out, "-q", "--export", "dicom,nifti,gif", "--export-dir", self.p("x"))
        # the same result as Enhanced MR multi-frame: 20 frames per instance, two slices
        self.check_enhanced(out, self.p("xe"))
        rec = h5py.File(out, "r")["reconstruction"][()]
        series = self.check_dicom_against(self.p("x", "r_dicom"), rec)
        for z in range(nz):
            src = groups[z0 + z]
            for t, (a, b) in enumerate(zip(src, series[z])):
                np.testing.assert_allclose(np.array(b.ImagePositionPatient, float), np.array(a.ImagePositionPatient, float), atol=1e-4)
                np.testing.assert_allclose(np.array(b.ImageOrientationPatient, float), np.array(a.ImageOrientationPatient, float), atol=1e-6)
                np.testing.assert_allclose(np.array(b.PixelSpacing, float), np.array(a.PixelSpacing, float), atol=1e-6)
                self.assertAlmostEqual(float(b.SliceThickness), float(a.SliceThickness))
                self.assertAlmostEqual(float(b.TriggerTime), float(a.TriggerTime), places=3)
            self.assertEqual(str(series[z][0].PatientName), str(src[0].PatientName))
            self.assertEqual(series[z][0].PatientID, src[0].PatientID)
            self.assertEqual(series[z][0].StudyInstanceUID, src[0].StudyInstanceUID)
            self.assertEqual(series[z][0].FrameOfReferenceUID, src[0].FrameOfReferenceUID)
            self.assertNotEqual(series[z][0].SeriesInstanceUID, src[0].SeriesInstanceUID)
        # the anatomy survived: the reconstruction correlates with the input magnitude
        mag = np.stack([np.stack([d.pixel_array for d in groups[z0 + z]]) for z in range(nz)], 1).astype(float)
        self.assertGreater(np.corrcoef(mag.ravel(), rec.ravel())[0, 1], 0.8)
        # NIfTI of the round trip: the affine from the input files (LPS -> RAS)
        a = groups[z0][0]
        iop = np.array(a.ImageOrientationPatient, float)
        ps = np.array(a.PixelSpacing, float)
        step = np.array(groups[z0 + 1][0].ImagePositionPatient, float) - np.array(a.ImagePositionPatient, float)
        A = np.eye(4)
        A[:3, 0], A[:3, 1], A[:3, 2] = ps[1] * iop[:3], ps[0] * iop[3:], step
        A[:3, 3] = np.array(a.ImagePositionPatient, float)
        A[:3] = LPS_TO_RAS @ A[:3]
        np.testing.assert_allclose(nib.load(self.p("x", "r.nii")).affine, A, atol=1e-4)
        with Image.open(self.p("x", "r_slice_00.gif")) as gif:
            self.assertEqual(gif.n_frames, 20)
        # one NIfTI per slice: each slice's own affine
        run("export", out, "-f", "nifti", "--per-slice", "-o", self.p("ps"), "-q")
        for z in range(nz):
            a = groups[z0 + z][0]
            iop = np.array(a.ImageOrientationPatient, float)
            A = np.eye(4)
            A[:3, 0], A[:3, 1] = ps[1] * iop[:3], ps[0] * iop[3:]
            A[:3, 2] = float(a.SliceThickness) * np.cross(iop[:3], iop[3:])
            A[:3, 3] = np.array(a.ImagePositionPatient, float)
            A[:3] = LPS_TO_RAS @ A[:3]
            s = nib.load(self.p("ps", f"r_slice{z:02d}.nii"))
            np.testing.assert_allclose(s.affine, A, atol=1e-4)
            np.testing.assert_array_equal(np.asarray(s.dataobj)[:, :, 0, :], np.transpose(rec[:, z], (2, 1, 0)))
        errs = dciodvfy_errors(glob.glob(self.p("x", "r_dicom", "*", "*.dcm")))
        if errs is None:
            print("SKIPPED dciodvfy check: dciodvfy (dicom3tools) not installed")
        else:
            self.assertEqual(errs, [])

    def test_nifti_interleaved_slices(self):
        """Slices stored in acquisition order (0, 2, 1 along the normal) still make one volume, in
        the order of their locations; a gap makes one file per slice. The result file is written here
        with h5py, so the exporter is checked on its own."""
        T, Z, H, W = 2, 3, 8, 6
        rng = np.random.default_rng(3)
        rec = rng.random((T, Z, H, W), dtype=np.float32)
        dir_w, dir_h = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])  # a sagittal stack
        normal = np.cross(dir_w, dir_h)
        origin = np.array([10.0, -20.0, 30.0])
        where = [0, 2, 1]

        def write(path, locs):
            geo = dict(slices=Z, frames=T, matrix=[H, W], pixel_spacing=[1.25, 0.75], slice_thickness=4.0,
                       slice_spacing=5.0, position=[list(origin + l * normal) for l in locs],
                       dir_h=[list(dir_h)] * Z, dir_w=[list(dir_w)] * Z, trigger_time_ms=[0.0, 45.0],
                       patient_position="HFS", source={}, subject={})
            with h5py.File(path, "w") as f:
                f["reconstruction"] = rec
                f.attrs["method"] = "zf"
                f.attrs["geometry"] = json.dumps(geo)

        write(self.p("il.h5"), [5.0 * k for k in where])
        run("export", self.p("il.h5"), "-f", "nifti", "-o", self.p("x"), "-q")
        img = nib.load(self.p("x", "il.nii"))
        inv = np.argsort(where)  # file slice of each location
        np.testing.assert_array_equal(np.asarray(img.dataobj), np.transpose(rec[:, inv], (3, 2, 1, 0)))
        A = np.eye(4)
        A[:3, 0], A[:3, 1], A[:3, 2], A[:3, 3] = 0.75 * dir_w, 1.25 * dir_h, 5.0 * normal, origin
        A[:3] = LPS_TO_RAS @ A[:3]
        np.testing.assert_allclose(img.affine, A, atol=1e-5)
        self.assertAlmostEqual(float(img.header.get_zooms()[3]), 45.0, places=4)
        # uneven spacing: one file per slice, each with its own position
        write(self.p("gap.h5"), [0.0, 12.0, 5.0])
        run("export", self.p("gap.h5"), "-f", "nifti", "-o", self.p("y"), "-q")
        self.assertFalse(os.path.exists(self.p("y", "gap.nii")))
        for z, l in enumerate([0.0, 12.0, 5.0]):
            s = nib.load(self.p("y", f"gap_slice{z:02d}.nii"))
            B = A.copy()
            B[:3, 2] = LPS_TO_RAS @ (4.0 * normal)
            B[:3, 3] = LPS_TO_RAS @ (origin + l * normal)
            np.testing.assert_allclose(s.affine, B, atol=1e-5)

    def test_from_dicom_with_maps_file(self):
        """--sens: the coil maps of a file (as fmrecon maps writes them) multiply the DICOM magnitude:
        with negligible noise every coil image is map x magnitude x one shared unit phase."""
        src = shared(*SUNNY)
        d = self.p("dcm")
        os.mkdir(d)
        for n in ("I0001.dcm", "I0002.dcm"):
            shutil.copy(os.path.join(src, n), d)
        mag = np.stack([pydicom.dcmread(os.path.join(d, n)).pixel_array.astype(float) for n in ("I0001.dcm", "I0002.dcm")])
        y, x = np.mgrid[0:256, 0:256] / 256.0
        maps = np.stack([np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.3) * np.exp(1j * (2 * x - y + c))
                         for c, (cx, cy) in enumerate([(0.1, 0.2), (0.9, 0.5), (0.4, 0.95)])]).astype(np.complex64)
        with h5py.File(self.p("maps.h5"), "w") as f:
            f["maps"] = maps[None]
        run("simulate", "--from-dicom", d, "--sens", self.p("maps.h5"), "--snr", "1e9", "-o", self.p("sr"), "-q")
        with h5py.File(self.p("sr", "subject_000.h5"), "r") as f:
            k = f["kspace"][()]
            self.assertEqual(f.attrs["coil_maps"], self.p("maps.h5"))
        self.assertEqual(k.shape, (2, 1, 3, 256, 256))
        coil = common.ifft2c(k[:, 0].astype(np.complex128))
        np.testing.assert_allclose(np.abs(coil), np.abs(maps)[None] * mag[:, None], rtol=0, atol=1e-4 * mag.max())
        ph = coil * np.conj(maps)[None]
        strong = (np.abs(maps[0]) > 0.3) & (np.abs(maps[1]) > 0.3) & (mag[0] > 0.2 * mag.max())
        d01 = np.angle(ph[0, 0][strong] * np.conj(ph[0, 1][strong]))
        self.assertLess(np.abs(d01).max(), 1e-3, "one phase shared by the coils")
        with h5py.File(self.p("bad_maps.h5"), "w") as f:
            f["maps"] = maps[None, :, :128]
        self.expect_fail(["simulate", "--from-dicom", d, "--sens", self.p("bad_maps.h5"), "-o", self.outdir, "-q"],
                         "bad_maps.h5", "256, 256")

    def test_bad_dicom_input(self):
        dicom_dir = shared(*SUNNY)
        files = sorted(glob.glob(os.path.join(dicom_dir, "*.dcm")))[:3]
        mixed = self.p("mixed")
        os.mkdir(mixed)
        for f in files:
            shutil.copy(f, mixed)
        d = pydicom.dcmread(os.path.join(mixed, os.path.basename(files[2])))
        d.SeriesInstanceUID = pydicom.uid.generate_uid()
        d.save_as(os.path.join(mixed, os.path.basename(files[2])))
        self.expect_fail(["simulate", "--from-dicom", mixed, "-o", self.outdir, "-q"], "mixed series", os.path.basename(files[2]))
        nogeo = self.p("nogeo")
        os.mkdir(nogeo)
        for f in files:
            shutil.copy(f, nogeo)
        d = pydicom.dcmread(os.path.join(nogeo, os.path.basename(files[1])))
        del d.ImagePositionPatient
        d.save_as(os.path.join(nogeo, os.path.basename(files[1])))
        self.expect_fail(["simulate", "--from-dicom", nogeo, "-o", self.outdir, "-q"], "missing geometry tag ImagePositionPatient",
                         os.path.basename(files[1]))
        notdicom = self.p("notdicom")
        os.mkdir(notdicom)
        with open(os.path.join(notdicom, "x.dcm"), "w") as f:
            f.write("hello")
        self.expect_fail(["simulate", "--from-dicom", notdicom, "-o", self.outdir, "-q"], "x.dcm", "not a readable DICOM")

    def test_bad_export(self):
        run("simulate", "-o", self.p("sim"), "--frames", "2", "--slices", "1", "--coils", "2", "--matrix", "16x16", "-q")
        s = self.p("sim", "subject_000.h5")
        self.expect_fail(["export", s, "-f", "nifti", "-o", self.outdir], s, "not an fmrecon reconstruction")
        run("recon", s, "-o", self.p("r.h5"), "-q")
        self.expect_fail(["export", self.p("r.h5"), "-f", "nifti,jpeg", "-o", self.outdir], "unknown export format 'jpeg'")
        self.expect_fail(["export", self.p("r.h5"), "-f", "nifti", "--complex", "-o", self.outdir], "--complex")
        self.expect_fail(["recon", s, "-o", os.path.join(self.outdir, "r.h5"), "-q", "--export", "tiff"], "unknown format 'tiff'")
        # a recon file whose geometry does not match its data
        with h5py.File(self.p("r.h5"), "a") as f:
            g = json.loads(f.attrs["geometry"])
            g["frames"] = 3
            g["trigger_time_ms"] = [0, 1, 2]
            f.attrs["geometry"] = json.dumps(g)
        self.expect_fail(["export", self.p("r.h5"), "-f", "dicom", "-o", self.outdir], "does not match")


if __name__ == "__main__":
    common.main()
