/* Inspection photos: shrink on the phone before upload, keep the EXIF.

   A form with data-shrink-photos and a file input name="photos" is intercepted on submit:
   each JPEG larger than MAX_SIDE is drawn upright (createImageBitmap with imageOrientation
   "from-image") on a canvas no larger than MAX_SIDE and encoded as JPEG at QUALITY. A canvas
   drops the EXIF, so the original's APP1 Exif segment (time, GPS position) is copied into the
   new JPEG right after its SOI marker, with its Orientation tag set to 1 (the canvas already
   turned the pixels). Anything that cannot be shrunk (an old browser, PNG, WebP, a JPEG
   without a readable structure) is sent as it was, and without script the form posts the
   files unchanged.

   Before anything is sent the files are measured against the form's data-max-mb (each
   photo) and data-max-count (photos): a selection the server would refuse is said here,
   naming the file, and nothing is sent (the notes stay in the form). */
(function () {
  "use strict";
  var MAX_SIDE = 1920;
  var QUALITY = 0.85;

  function u16(b, i, le) { return le ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]; }
  function u32(b, i, le) {
    return le ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0
              : ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /* The APP1 "Exif\0\0" segment of a JPEG (marker and length included), or null. */
  function exifSegment(bytes) {
    if (bytes.length < 4 || bytes[0] !== 0xFF || bytes[1] !== 0xD8) return null;
    var i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xFF) return null;
      var marker = bytes[i + 1];
      if (marker === 0xFF) { i += 1; continue; }  // fill byte
      if (marker === 0xDA || marker === 0xD9) return null;  // image data: no Exif before it
      var len = u16(bytes, i + 2, false);
      if (len < 2 || i + 2 + len > bytes.length) return null;
      if (marker === 0xE1 && len >= 8 && bytes[i + 4] === 0x45 && bytes[i + 5] === 0x78 &&
          bytes[i + 6] === 0x69 && bytes[i + 7] === 0x66 && bytes[i + 8] === 0 &&
          bytes[i + 9] === 0) {
        return bytes.slice(i, i + 2 + len);
      }
      i += 2 + len;
    }
    return null;
  }

  /* Set the Orientation tag (0x0112) of IFD0 to 1 in a copied Exif segment, in place. */
  function uprightOrientation(seg) {
    var t = 10;  // FF E1, length (2), "Exif\0\0" (6): the TIFF header starts here
    if (seg.length < t + 8) return;
    var le = seg[t] === 0x49 && seg[t + 1] === 0x49;
    if (!le && !(seg[t] === 0x4D && seg[t + 1] === 0x4D)) return;
    var ifd = t + u32(seg, t + 4, le);
    if (ifd + 2 > seg.length) return;
    var n = u16(seg, ifd, le);
    for (var k = 0; k < n; k++) {
      var e = ifd + 2 + k * 12;
      if (e + 12 > seg.length) return;
      if (u16(seg, e, le) === 0x0112) {
        // SHORT, count 1: the value sits in the first two bytes of the value field.
        seg[e + 8] = le ? 1 : 0;
        seg[e + 9] = le ? 0 : 1;
        return;
      }
    }
  }

  function toBlob(canvas) {
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (b) { if (b) { resolve(b); } else { reject(new Error("toBlob")); } },
                    "image/jpeg", QUALITY);
    });
  }

  /* A shrunk copy of ``file`` with its Exif, or the file itself. */
  function shrink(file) {
    if (!window.createImageBitmap || !file.arrayBuffer || !window.Blob) {
      return Promise.resolve(file);
    }
    return file.arrayBuffer().then(function (buf) {
      var bytes = new Uint8Array(buf);
      if (bytes.length < 3 || bytes[0] !== 0xFF || bytes[1] !== 0xD8 || bytes[2] !== 0xFF) {
        return file;  // not a JPEG: sent as it is
      }
      return createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bmp) {
        var scale = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
        if (scale >= 1) { if (bmp.close) bmp.close(); return file; }
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(bmp.width * scale));
        canvas.height = Math.max(1, Math.round(bmp.height * scale));
        canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
        if (bmp.close) bmp.close();
        return toBlob(canvas).then(function (blob) { return blob.arrayBuffer(); }).then(function (out) {
          var jpeg = new Uint8Array(out);
          if (jpeg[0] !== 0xFF || jpeg[1] !== 0xD8) return file;
          var seg = exifSegment(bytes);
          var parts = [jpeg];
          if (seg) {
            uprightOrientation(seg);
            parts = [jpeg.subarray(0, 2), seg, jpeg.subarray(2)];
          }
          var shrunk = new Blob(parts, {type: "image/jpeg"});
          if (shrunk.size >= file.size) return file;
          return new File([shrunk], file.name, {type: "image/jpeg", lastModified: file.lastModified});
        });
      });
    }).catch(function () { return file; });
  }

  function tooLarge(form, files) {
    var en = document.documentElement.lang === "en";
    var maxMb = parseFloat(form.getAttribute("data-max-mb") || "0");
    var maxCount = parseInt(form.getAttribute("data-max-count") || "0", 10);
    if (maxCount && files.length > maxCount) {
      return en ? "Too many photos: at most " + maxCount + " per inspection."
                : "照片过多：每次检查最多 " + maxCount + " 张，请重新选择。";
    }
    var total = 0;
    for (var k = 0; k < files.length; k++) {
      total += files[k].size;
      if (maxMb && files[k].size > maxMb * 1048576) {
        var mb = (files[k].size / 1048576).toFixed(1);
        return en ? "Photo \u201c" + files[k].name + "\u201d is too large (" + mb + " MB; at most " + maxMb + " MB each). Pick the photos again."
                  : "照片“" + files[k].name + "”过大（" + mb + " MB，每张最多 " + maxMb + " MB），请重新选择照片。";
      }
    }
    if (maxMb && maxCount && total > maxMb * maxCount * 1048576) {
      return en ? "The photos together are too large (" + (total / 1048576).toFixed(1) + " MB). Pick fewer photos."
                : "照片合计过大（" + (total / 1048576).toFixed(1) + " MB），请减少照片后重新选择。";
    }
    return "";
  }

  function setup(form) {
    var input = form.querySelector("input[type=file][name=photos]");
    if (!input || !window.Promise || !window.DataTransfer) return;
    var status = form.querySelector(".ck-photo-status");
    var ready = false;
    form.addEventListener("submit", function (ev) {
      if (ready || !input.files || !input.files.length) return;
      ev.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      if (status) status.textContent = document.documentElement.lang === "en" ? "Preparing photos…" : "正在压缩照片…";
      var files = Array.prototype.slice.call(input.files);
      Promise.all(files.map(shrink)).then(function (out) {
        try {
          var dt = new DataTransfer();
          out.forEach(function (f) { dt.items.add(f); });
          input.files = dt.files;
        } catch (e) { /* the originals go */ }
      }).catch(function () {}).then(function () {
        if (button) button.disabled = false;
        var refusal = tooLarge(form, Array.prototype.slice.call(input.files));
        if (refusal) {
          if (status) { status.textContent = refusal; status.classList.add("ck-error"); }
          form.setAttribute("data-photos-refused", "1");
          return;
        }
        ready = true;
        form.setAttribute("data-photos-ready", String(input.files.length));
        if (form.requestSubmit) { form.requestSubmit(button || undefined); } else { form.submit(); }
      });
    });
  }

  var forms = document.querySelectorAll("form[data-shrink-photos]");
  for (var i = 0; i < forms.length; i++) setup(forms[i]);
})();
