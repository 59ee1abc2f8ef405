import streamlit as st
from pages import _common as common
common.page_setup("Explain")
st.title("Explain")
