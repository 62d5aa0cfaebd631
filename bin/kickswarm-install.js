#!/usr/bin/env node
import '../dist/node-installer/main.js';
