// The outcome line (#message) and short beeps: one high tone for success, two low ones for a
// warning or an error. Beeps come from an oscillator, so the add-on ships no audio files.
let audio;
let soundsOn = true;

export function setSounds(on) {
  soundsOn = on;
}

function beep(frequency, start, length) {
  audio ??= new AudioContext();
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.frequency.value = frequency;
  gain.gain.setValueAtTime(0.15, audio.currentTime + start);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + length);
  osc.connect(gain).connect(audio.destination);
  osc.start(audio.currentTime + start);
  osc.stop(audio.currentTime + start + length);
}

function sound(kind) {
  if (!soundsOn) return;
  try {
    if (kind === "ok") beep(1320, 0, 0.08);
    else { beep(330, 0, 0.12); beep(220, 0.16, 0.18); }
  } catch {
    // No audio device: the message still says it.
  }
}

// Shows `text` with `kind` ok, warning or error; `undo` shows the Undo button with that action.
export function say(kind, text, undo) {
  const message = document.getElementById("message");
  message.dataset.kind = kind;
  message.textContent = text;
  const button = document.getElementById("undo");
  button.hidden = !undo;
  button.onclick = undo ?? null;
  sound(kind);
}
