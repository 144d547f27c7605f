/* The prompt canvas over the image: draws the box and the points, turns mouse gestures into
   prompts in image pixels (the input's own pixel grid, as predict's --box takes them). */
"use strict";

class PromptCanvas {
  /** canvas: the <canvas> over the image; onPrompt({box} | {point}) is called for each gesture. */
  constructor(canvas, onPrompt) {
    this.canvas = canvas;
    this.onPrompt = onPrompt;
    this.tool = "box";
    this.size = null; // {width, height} of the input in pixels
    this.prompts = { box: null, points: [] };
    this.drag = null; // {x0, y0, x1, y1} while a box is drawn
    this.enabled = false;
    canvas.addEventListener("mousedown", (e) => this.down(e));
    window.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", (e) => this.up(e));
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setImage(width, height) {
    this.size = { width, height };
    this.draw();
  }

  setPrompts(prompts) {
    this.prompts = prompts;
    this.draw();
  }

  /** Image pixel coordinates of a mouse event, clamped to the image. */
  toImage(event) {
    const r = this.canvas.getBoundingClientRect();
    const fx = Math.min(Math.max((event.clientX - r.left) / r.width, 0), 1);
    const fy = Math.min(Math.max((event.clientY - r.top) / r.height, 0), 1);
    return { x: Math.round(fx * this.size.width), y: Math.round(fy * this.size.height) };
  }

  down(event) {
    if (!this.enabled || !this.size || event.button !== 0) return;
    event.preventDefault();
    const p = this.toImage(event);
    if (this.tool === "box") {
      this.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y };
    } else {
      this.onPrompt({ point: [p.x, p.y, this.tool === "include" ? 1 : 0] });
    }
  }

  move(event) {
    if (!this.drag) return;
    const p = this.toImage(event);
    this.drag.x1 = p.x;
    this.drag.y1 = p.y;
    this.draw();
  }

  up(event) {
    if (!this.drag) return;
    const d = this.drag;
    this.drag = null;
    const box = [
      Math.min(d.x0, d.x1),
      Math.min(d.y0, d.y1),
      Math.max(d.x0, d.x1),
      Math.max(d.y0, d.y1),
    ];
    this.draw();
    if (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) this.onPrompt({ box });
  }

  draw() {
    const c = this.canvas,
      ratio = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(c.clientWidth * ratio));
    c.height = Math.max(1, Math.round(c.clientHeight * ratio));
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    if (!this.size) return;
    const sx = c.width / this.size.width,
      sy = c.height / this.size.height;
    const rect = (b, colour, dash) => {
      g.setLineDash(dash);
      g.strokeStyle = colour;
      g.lineWidth = 2 * ratio;
      g.strokeRect(b[0] * sx, b[1] * sy, (b[2] - b[0]) * sx, (b[3] - b[1]) * sy);
    };
    if (this.prompts.box) rect(this.prompts.box, "#ffd84a", []);
    if (this.drag) {
      const d = this.drag;
      rect(
        [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)],
        "#ffd84a",
        [6 * ratio, 4 * ratio],
      );
    }
    g.setLineDash([]);
    for (const [x, y, label] of this.prompts.points) {
      g.beginPath();
      g.arc(x * sx, y * sy, 6 * ratio, 0, 2 * Math.PI);
      g.fillStyle = label ? "#3ddc84" : "#ff4d4d";
      g.fill();
      g.lineWidth = 2 * ratio;
      g.strokeStyle = "#000";
      g.stroke();
      g.fillStyle = "#000";
      g.font = `${10 * ratio}px sans-serif`;
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText(label ? "+" : "\u2212", x * sx, y * sy);
    }
  }
}

window.PromptCanvas = PromptCanvas;
