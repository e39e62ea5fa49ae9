!> @file gyre_tra.F90
!> @brief Temperature: centred advection in advective form built from the thickness fluxes (a uniform
!!        temperature stays uniform), Laplacian diffusion (rn_aht) and relaxation to tstar(y) (rn_trelax).
!>
!>   dT/dt = -(1/h) [ div(h u T) - T div(h u) ] + aht lap(T) + (tstar - T) / trelax
module gyre_tra
   use gyre_par
   use gyre_mpp, only: ni, nj
   use gyre_dom, only: tmask, umask, vmask
   use gyre_oce, only: ht, uflx, vflx
   use gyre_sbc, only: tstar, rtrelax_inv
   implicit none
   private

   public :: tra_tend

contains

   !> Temperature tendency on the interior; needs ssh_flx first.
   subroutine tra_tend(px, pt)
      real(wp), intent(in)    :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      real(wp), intent(inout) :: pt(1-nn_hls:, 1-nn_hls:, :)   !< tendencies; the temp slot is set
      integer :: ji, jj
      real(wp) :: zhrdx, zhrdy, zrdx2, zrdy2, zadv, zdif, zt
      zhrdx = 0.5_wp / rn_dx ; zhrdy = 0.5_wp / rn_dy
      zrdx2 = rn_aht / rn_dx**2 ; zrdy2 = rn_aht / rn_dy**2
      do jj = 1, nj
         do ji = 1, ni
            zt = px(ji,jj,jp_tem)
            zadv = -((uflx(ji,jj) * (px(ji+1,jj,jp_tem) - zt) + uflx(ji-1,jj) * (zt - px(ji-1,jj,jp_tem))) * zhrdx &
               &   + (vflx(ji,jj) * (px(ji,jj+1,jp_tem) - zt) + vflx(ji,jj-1) * (zt - px(ji,jj-1,jp_tem))) * zhrdy) &
               &   / ht(ji,jj)
            zdif = (umask(ji,jj) * (px(ji+1,jj,jp_tem) - zt) - umask(ji-1,jj) * (zt - px(ji-1,jj,jp_tem))) * zrdx2 &
               & + (vmask(ji,jj) * (px(ji,jj+1,jp_tem) - zt) - vmask(ji,jj-1) * (zt - px(ji,jj-1,jp_tem))) * zrdy2
            pt(ji,jj,jp_tem) = (zadv + zdif + (tstar(jj) - zt) * rtrelax_inv) * tmask(ji,jj)
         end do
      end do
   end subroutine tra_tend

end module gyre_tra
