// The mask editor: a canvas at the picture's own resolution over the picture, painted with a round brush (size and
// hardness), erased with the eraser or the right button; undo and redo per stroke; clear, invert, zoom and pan;
// strokes go on past the picture's edge (the pointer is captured). The mask is exported as the CLI reads it: a grey
// PNG, white = repaint. Feathering, growing and "only the masked area" are parameters of the job, not baked in.

const overlayColour = [255, 48, 48];
const historyLimit = 50;

export class MaskEditor {
  constructor({ stage, viewport, picture, canvas, onChange }) {
    this.stage = stage;
    this.viewport = viewport;
    this.picture = picture;
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange || (() => {});
    this.size = 16;
    this.hardness = 1;
    this.erasing = false;
    this.undoStack = [];
    this.redoStack = [];
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.stroke = null;
    this.panning = null;
    this.spaceHeld = false;
    this.listen();
  }

  /** Shows a picture (a URL) and starts an empty mask at its size. The picture is decoded off-screen first, and
   * only the latest of overlapping loads is shown (a result arriving while a file is chosen must not win). */
  async load(url) {
    const token = (this.loadToken = (this.loadToken || 0) + 1);
    const image = new Image();
    image.src = url;
    await image.decode();
    if (token !== this.loadToken) return;
    this.picture.src = url;
    this.canvas.width = image.naturalWidth;
    this.canvas.height = image.naturalHeight;
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.undoStack = [];
    this.redoStack = [];
    this.fit();
    this.onChange();
  }

  get hasPicture() {
    return this.canvas.width > 0;
  }

  /** Zoom and pan so that the whole picture (the mask canvas has its size) fills the stage. */
  fit() {
    const { width, height } = this.canvas;
    if (!width) return;
    const bounds = this.stage.getBoundingClientRect();
    this.zoom = Math.max(0.05, Math.min(bounds.width / width, bounds.height / height) * 0.92);
    this.pan = { x: (bounds.width - width * this.zoom) / 2, y: (bounds.height - height * this.zoom) / 2 };
    this.applyView();
  }

  applyView() {
    this.viewport.style.transform = `translate(${this.pan.x}px, ${this.pan.y}px) scale(${this.zoom})`;
  }

  setOpacity(fraction) {
    this.canvas.style.opacity = String(fraction);
  }

  /** The picture pixel under a pointer event (may lie outside the picture). */
  pixelAt(event) {
    const bounds = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - bounds.left) / bounds.width) * this.canvas.width,
      y: ((event.clientY - bounds.top) / bounds.height) * this.canvas.height,
    };
  }

  dab(point) {
    const radius = this.size / 2;
    const context = this.context;
    const inner = radius * this.hardness * 0.999;
    const gradient = context.createRadialGradient(point.x, point.y, inner, point.x, point.y, radius);
    const [r, g, b] = overlayColour;
    gradient.addColorStop(0, `rgba(${r},${g},${b},1)`);
    gradient.addColorStop(1, `rgba(${r},${g},${b},0)`);
    context.globalCompositeOperation = this.stroke.erasing ? "destination-out" : "source-over";
    context.fillStyle = this.hardness >= 1 ? `rgb(${r},${g},${b})` : gradient;
    context.beginPath();
    context.arc(point.x, point.y, radius, 0, Math.PI * 2);
    context.fill();
    context.globalCompositeOperation = "source-over";
  }

  /** Dabs along the segment from the last point, close enough that the stroke is continuous. */
  strokeTo(point) {
    const last = this.stroke.last;
    const distance = Math.hypot(point.x - last.x, point.y - last.y);
    const spacing = Math.max(0.5, this.size / 6);
    for (let travelled = spacing; travelled <= distance; travelled += spacing) {
      const t = travelled / distance;
      this.dab({ x: last.x + (point.x - last.x) * t, y: last.y + (point.y - last.y) * t });
    }
    this.dab(point);
    this.stroke.last = point;
  }

  snapshot() {
    return this.context.getImageData(0, 0, this.canvas.width, this.canvas.height);
  }

  remember() {
    this.undoStack.push(this.snapshot());
    if (this.undoStack.length > historyLimit) this.undoStack.shift();
    this.redoStack = [];
  }

  undo() {
    if (!this.undoStack.length) return;
    this.redoStack.push(this.snapshot());
    this.context.putImageData(this.undoStack.pop(), 0, 0);
    this.onChange();
  }

  redo() {
    if (!this.redoStack.length) return;
    this.undoStack.push(this.snapshot());
    this.context.putImageData(this.redoStack.pop(), 0, 0);
    this.onChange();
  }

  clear() {
    this.remember();
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.onChange();
  }

  invert() {
    this.remember();
    const image = this.snapshot();
    const [r, g, b] = overlayColour;
    for (let i = 0; i < image.data.length; i += 4) {
      image.data[i] = r;
      image.data[i + 1] = g;
      image.data[i + 2] = b;
      image.data[i + 3] = 255 - image.data[i + 3];
    }
    this.context.putImageData(image, 0, 0);
    this.onChange();
  }

  /** The mask as the CLI reads it: grey, white = repaint (the painted coverage as the grey level). */
  async exportPNG() {
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const outContext = out.getContext("2d");
    const source = this.snapshot();
    const grey = outContext.createImageData(out.width, out.height);
    for (let i = 0; i < source.data.length; i += 4) {
      const level = source.data[i + 3];
      grey.data[i] = level;
      grey.data[i + 1] = level;
      grey.data[i + 2] = level;
      grey.data[i + 3] = 255;
    }
    outContext.putImageData(grey, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  /** A mask made elsewhere (white = repaint), scaled to the picture. */
  async importImage(blob) {
    const bitmap = await createImageBitmap(blob);
    const scratch = document.createElement("canvas");
    scratch.width = this.canvas.width;
    scratch.height = this.canvas.height;
    const scratchContext = scratch.getContext("2d", { willReadFrequently: true });
    scratchContext.drawImage(bitmap, 0, 0, scratch.width, scratch.height);
    const grey = scratchContext.getImageData(0, 0, scratch.width, scratch.height);
    this.remember();
    const mask = this.context.createImageData(scratch.width, scratch.height);
    const [r, g, b] = overlayColour;
    for (let i = 0; i < grey.data.length; i += 4) {
      mask.data[i] = r;
      mask.data[i + 1] = g;
      mask.data[i + 2] = b;
      mask.data[i + 3] = Math.round((grey.data[i] + grey.data[i + 1] + grey.data[i + 2]) / 3);
    }
    this.context.putImageData(mask, 0, 0);
    this.onChange();
  }

  /** Whether any pixel is marked. */
  isEmpty() {
    const data = this.snapshot().data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return false;
    return true;
  }

  setSize(size) {
    this.size = Math.max(1, Math.min(256, Math.round(size)));
    this.onChange();
  }

  listen() {
    const stage = this.stage;
    stage.addEventListener("contextmenu", (event) => event.preventDefault());
    stage.addEventListener("pointerdown", (event) => {
      if (!this.hasPicture) return;
      stage.focus();
      stage.setPointerCapture(event.pointerId);
      if (event.button === 1 || this.spaceHeld) {
        this.panning = { x: event.clientX - this.pan.x, y: event.clientY - this.pan.y };
        return;
      }
      this.remember();
      const point = this.pixelAt(event);
      this.stroke = { last: point, erasing: this.erasing || event.button === 2 };
      this.dab(point);
    });
    stage.addEventListener("pointermove", (event) => {
      if (this.panning) {
        this.pan = { x: event.clientX - this.panning.x, y: event.clientY - this.panning.y };
        this.applyView();
      } else if (this.stroke) {
        const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
        for (const sample of samples) this.strokeTo(this.pixelAt(sample));
      }
    });
    const end = (event) => {
      if (stage.hasPointerCapture(event.pointerId)) stage.releasePointerCapture(event.pointerId);
      if (this.stroke) this.onChange();
      this.stroke = null;
      this.panning = null;
    };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", end);
    stage.addEventListener("wheel", (event) => {
      if (!this.hasPicture) return;
      event.preventDefault();
      const bounds = stage.getBoundingClientRect();
      const x = event.clientX - bounds.left;
      const y = event.clientY - bounds.top;
      const factor = Math.exp(-event.deltaY * 0.0015);
      const zoom = Math.max(0.05, Math.min(64, this.zoom * factor));
      // Keep the point under the pointer where it is.
      this.pan = { x: x - ((x - this.pan.x) * zoom) / this.zoom, y: y - ((y - this.pan.y) * zoom) / this.zoom };
      this.zoom = zoom;
      this.applyView();
    }, { passive: false });
    stage.addEventListener("keydown", (event) => {
      if (event.key === " ") {
        this.spaceHeld = true;
        event.preventDefault();
      }
    });
    stage.addEventListener("keyup", (event) => {
      if (event.key === " ") this.spaceHeld = false;
    });
  }
}
